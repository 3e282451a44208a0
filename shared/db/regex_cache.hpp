// Compiled REGEXP patterns of one SQLite connection, bounded so a query over
// many distinct patterns cannot grow memory without limit. A pattern that does
// not compile is cached as "no regex": REGEXP with it is false, not an error.
#pragma once

#include <memory>
#include <regex>
#include <string>
#include <unordered_map>

namespace dbsup {

class RegexCache {
public:
    static constexpr std::size_t kCapacity = 64;

    /// The compiled pattern, or nullptr when it is not a valid regular expression.
    const std::regex* find_or_compile(const std::string& pattern);

private:
    std::unordered_map<std::string, std::unique_ptr<std::regex>> patterns_;
};

}  // namespace dbsup
