#include "shared/db/regex_cache.hpp"

namespace dbsup {

const std::regex* RegexCache::find_or_compile(const std::string& pattern) {
    auto found = patterns_.find(pattern);
    if (found != patterns_.end()) return found->second.get();
    // Simplest bound that never holds a dangling pointer: statements in flight
    // keep their own pointer only for one call (see sqlite_connection.cpp).
    if (patterns_.size() >= kCapacity) patterns_.clear();
    std::unique_ptr<std::regex> compiled;
    try {
        compiled = std::make_unique<std::regex>(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error&) {
        compiled = nullptr;
    }
    return patterns_.emplace(pattern, std::move(compiled)).first->second.get();
}

}  // namespace dbsup
