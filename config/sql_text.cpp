#include "config/sql_text.hpp"

#include <string>

namespace dbsup {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }
bool is_word(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// The index just after the quoted run that starts at i with `quote`. Doubled
// quotes stay inside; with backslashes (E'...'), \x escapes one character.
std::size_t after_quoted(std::string_view t, std::size_t i, char quote, bool backslashes) {
    for (std::size_t j = i + 1; j < t.size(); ++j) {
        if (backslashes && t[j] == '\\') {
            ++j;
        } else if (t[j] == quote) {
            if (j + 1 < t.size() && t[j + 1] == quote) {
                ++j;
                continue;
            }
            return j + 1;
        }
    }
    return t.size();
}

// After a nested /* */ comment starting at i.
std::size_t after_block_comment(std::string_view t, std::size_t i) {
    int depth = 0;
    for (std::size_t j = i; j + 1 < t.size(); ++j) {
        if (t.substr(j, 2) == "/*") {
            ++depth;
            ++j;
        } else if (t.substr(j, 2) == "*/") {
            ++j;
            if (--depth == 0) return j + 1;
        }
    }
    return t.size();
}

// After a $tag$...$tag$ run at i, or i when no dollar quote starts there
// ($1, a parameter, is not one).
std::size_t after_dollar_quote(std::string_view t, std::size_t i) {
    std::size_t end = i + 1;
    while (end < t.size() && is_word(t[end])) ++end;
    if (end >= t.size() || t[end] != '$') return i;
    if (end > i + 1 && t[i + 1] >= '0' && t[i + 1] <= '9') return i;
    const std::string_view tag = t.substr(i, end - i + 1);
    std::size_t close = t.find(tag, end + 1);
    return close == std::string_view::npos ? t.size() : close + tag.size();
}

}  // namespace

std::size_t count_sql_statements(std::string_view t) {
    std::size_t count = 0;
    bool content = false;  // the current part has more than blanks and comments
    for (std::size_t i = 0; i < t.size();) {
        const char c = t[i];
        if (c == ';') {
            if (content) ++count;
            content = false;
            ++i;
        } else if (is_blank(c)) {
            ++i;
        } else if (t.substr(i, 2) == "--") {
            std::size_t end = t.find('\n', i);
            i = end == std::string_view::npos ? t.size() : end + 1;
        } else if (t.substr(i, 2) == "/*") {
            i = after_block_comment(t, i);
        } else {
            content = true;
            const bool escaped = (c == 'E' || c == 'e') && i + 1 < t.size() && t[i + 1] == '\'' &&
                                 (i == 0 || !is_word(t[i - 1]));
            if (escaped)
                i = after_quoted(t, i + 1, '\'', true);
            else if (c == '\'' || c == '"')
                i = after_quoted(t, i, c, false);
            else if (std::size_t end = c == '$' ? after_dollar_quote(t, i) : i; end != i)
                i = end;
            else
                ++i;
        }
    }
    return count + (content ? 1 : 0);
}

}  // namespace dbsup
