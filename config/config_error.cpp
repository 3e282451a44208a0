#include "config/config_error.hpp"

namespace dbsup {
namespace {

std::string join(const std::vector<Diagnostic>& diagnostics) {
    std::string out;
    for (const auto& d : diagnostics) {
        if (!out.empty()) out += '\n';
        out += d.to_string();
    }
    return out;
}

}  // namespace

std::string Diagnostic::to_string() const {
    return where + ": " + (key.empty() ? "" : key + ": ") + message;
}

ConfigError::ConfigError(std::vector<Diagnostic> diagnostics)
    : std::runtime_error(join(diagnostics)), diagnostics_(std::move(diagnostics)) {}

}  // namespace dbsup
