// Builds a Config from a TOML file (or text), or from the DATABASE_* environment
// variables of the original design when no file is given. Every problem found is
// collected; if there is any, one ConfigError carries them all.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace dbsup {

/// Looks up an environment variable; injectable so tests need not touch the real one.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;

/// The process environment through getenv.
EnvLookup process_environment();

class ConfigLoader {
public:
    /// @throws ConfigError naming file:line:column and key for every problem found.
    static Config load_file(const std::string& path);
    /// Same as load_file, from text; source_name stands in for the file name.
    static Config load_string(std::string_view text, const std::string& source_name);
    /// Database "main" from DATABASE_TYPE, _NAME, _USER, _PASSWORD, _HOST, _PORT, _SSL;
    /// SQLite dbsupervisor.db when none is set. @throws ConfigError
    static Config from_environment(const EnvLookup& env);
    /// Gives every database whose pool_size is unset (0) one connection per
    /// job thread ([worker] threads): what a worker really uses, so the
    /// defaults fit a default PostgreSQL (max_connections 100) for a few hosts.
    static void size_pools(Config& config);
};

}  // namespace dbsup
