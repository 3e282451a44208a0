// Reads one TOML table into typed fields, recording a Diagnostic (with the
// file, line and column TOML++ keeps for every node) for each wrong type, range
// or unknown key instead of stopping at the first. finish() reports the keys
// nobody asked for: unknown keys are errors, so typos never pass silently.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <set>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "config/config_error.hpp"

namespace dbsup {

class SectionReader {
public:
    SectionReader(const toml::table& table, std::string path, const std::string& file,
                  std::vector<Diagnostic>& diagnostics);

    void integer(const char* key, std::int64_t& out, std::int64_t min, std::int64_t max);
    void number(const char* key, double& out, double min, double max);
    void boolean(const char* key, bool& out);
    void string(const char* key, std::string& out, bool allow_empty = true);
    void choice(const char* key, std::string& out, std::initializer_list<const char*> allowed);
    /// A string, or an array of strings.
    void string_list(const char* key, std::vector<std::string>& out);
    /// An array of exactly two integers [low, high] with min <= low <= high <= max.
    void integer_pair(const char* key, std::int64_t& low, std::int64_t& high, std::int64_t min,
                      std::int64_t max);
    /// A sub-table (inline or not); nullptr when absent or of the wrong type (recorded).
    const toml::table* table(const char* key);
    /// Records a diagnostic at the key's value (or at this table if it is absent).
    void error(const char* key, const std::string& message);
    /// True when the key is present; marks it as known.
    bool has(const char* key);
    /// Records a diagnostic when a required key is absent; true when present.
    bool require(const char* key);
    /// Reports every key of the table that no call above asked for.
    void finish();

    std::string key_path(const char* key) const;

private:
    std::string where(const toml::source_region& region) const;
    const toml::node* take(const char* key);
    void wrong(const char* key, const toml::node& node, const std::string& expected);

    const toml::table& table_;
    std::string path_;
    const std::string& file_;
    std::vector<Diagnostic>& diagnostics_;
    std::set<std::string, std::less<>> used_;
};

}  // namespace dbsup
