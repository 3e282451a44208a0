#include "worker/named_sql.hpp"

#include <algorithm>
#include <cctype>

namespace dbsup {
namespace {

bool name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Copies a quoted run ('...', "...") or a comment starting at i; returns the
// index after it, or i when nothing of that kind starts there.
std::size_t skip_opaque(std::string_view t, std::size_t i, std::string& out) {
    std::size_t end = i;
    if (t[i] == '\'' || t[i] == '"') {
        end = t.find(t[i], i + 1);
        end = end == std::string_view::npos ? t.size() : end + 1;
    } else if (t.substr(i, 2) == "--") {
        end = t.find('\n', i);
        end = end == std::string_view::npos ? t.size() : end;
    } else if (t.substr(i, 2) == "/*") {
        end = t.find("*/", i + 2);
        end = end == std::string_view::npos ? t.size() : end + 2;
    }
    out.append(t.substr(i, end - i));
    return end;
}

}  // namespace

NamedSql NamedSql::compile(std::string_view t) {
    NamedSql out;
    out.sql.reserve(t.size());
    std::size_t i = 0;
    while (i < t.size()) {
        if (std::size_t after = skip_opaque(t, i, out.sql); after != i) {
            i = after;
        } else if (t.substr(i, 2) == "::") {
            out.sql += "::";
            i += 2;
        } else if (t[i] == ':' && i + 1 < t.size() && name_start(t[i + 1])) {
            std::size_t end = i + 1;
            while (end < t.size() && name_char(t[end])) ++end;
            std::string name(t.substr(i + 1, end - i - 1));
            auto it = std::find(out.names.begin(), out.names.end(), name);
            if (it == out.names.end()) it = out.names.insert(out.names.end(), name);
            out.sql += '$';  // appended apart: GCC 12 -O2 misreports "$" + string (-Wrestrict)
            out.sql += std::to_string(it - out.names.begin() + 1);
            i = end;
        } else {
            out.sql += t[i++];
        }
    }
    return out;
}

}  // namespace dbsup
