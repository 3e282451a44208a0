// A database address in SQLAlchemy's URL convention:
//   sqlite:///relative.db   sqlite:////absolute/path.db   sqlite::memory:
//   postgresql://user@host:port/dbname?sslmode=prefer
// Parsing validates; redacted() is the only form that may be printed or logged.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace dbsup {

enum class Backend { sqlite, postgresql };

const char* to_string(Backend backend) noexcept;

struct DatabaseUrl {
    Backend backend = Backend::sqlite;
    // SQLite: a file path, or ":memory:".
    std::string path = "dbsupervisor.db";
    // PostgreSQL.
    std::string user;
    std::string host = "localhost";
    int port = 5432;
    std::string dbname;
    std::map<std::string, std::string> params;  // query string, e.g. sslmode
    // Only set from DATABASE_PASSWORD; never from a URL in a config file.
    std::optional<std::string> password;

    /// Parses a URL. @throws std::invalid_argument with what is wrong (never the password).
    static DatabaseUrl parse(const std::string& text);
    /// The URL with any password replaced by "***": safe to print. Names and
    /// parameter values are percent-encoded, so without a password it parses
    /// back to the same URL (the resolved configuration handed to workers).
    std::string redacted() const;
    bool is_memory() const { return backend == Backend::sqlite && path == ":memory:"; }
};

}  // namespace dbsup
