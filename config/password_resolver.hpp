// Where a database's password comes from: password_env, password_file, or (from
// the environment only) DATABASE_PASSWORD. The value is handed to the backend and
// never printed; problems name the variable or file, never the secret.
#pragma once

#include <optional>
#include <string>

#include "config/config.hpp"

namespace dbsup {

class PasswordResolver {
public:
    /// The password, or nullopt when none is configured. @throws ConfigError when
    /// the named variable is unset or the file cannot be read.
    static std::optional<std::string> resolve(const DatabaseConfig& db);
    /// What resolve() would complain about, as a warning for check-config.
    static std::optional<std::string> problem(const DatabaseConfig& db);
};

}  // namespace dbsup
