#include "config/password_resolver.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "config/config_error.hpp"

namespace dbsup {

std::optional<std::string> PasswordResolver::problem(const DatabaseConfig& db) {
    std::string key = "databases." + db.name;
    if (!db.password_env.empty() && !std::getenv(db.password_env.c_str()))
        return key + ".password_env: environment variable " + db.password_env + " is not set";
    if (!db.password_file.empty()) {
        std::ifstream in(db.password_file);
        if (!in)
            return key + ".password_file: cannot read " + db.password_file + ": " +
                   std::strerror(errno);
    }
    return std::nullopt;
}

std::optional<std::string> PasswordResolver::resolve(const DatabaseConfig& db) {
    if (auto why = problem(db)) throw ConfigError({{"config", "", *why}});
    if (!db.password_env.empty()) return std::string(std::getenv(db.password_env.c_str()));
    if (!db.password_file.empty()) {
        std::ifstream in(db.password_file);
        std::string line;
        std::getline(in, line);  // the first line; a trailing newline is not part of it
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
    }
    return db.url.password;
}

}  // namespace dbsup
