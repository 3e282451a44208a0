// Configuration problems, gathered rather than thrown one by one, so that
// check-config can report every error in a file at once. Each diagnostic names
// where (file:line:column, or "environment"), the key, and what was expected.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace dbsup {

struct Diagnostic {
    std::string where;  // "file.toml:12:5" or "environment"
    std::string key;    // "databases.main.pool_size"
    std::string message;

    /// One line: "where: key: message".
    std::string to_string() const;
};

class ConfigError : public std::runtime_error {
public:
    explicit ConfigError(std::vector<Diagnostic> diagnostics);
    const std::vector<Diagnostic>& diagnostics() const noexcept { return diagnostics_; }

private:
    std::vector<Diagnostic> diagnostics_;
};

}  // namespace dbsup
