#include "shared/monitoring/query_label.hpp"

#include <iterator>

namespace dbsup {

const QueryLabel& QueryLabel::of_statement(std::string_view sql) {
    static const QueryLabel kinds[] = {{"select", "-", "sql"}, {"insert", "-", "sql"},
                                       {"update", "-", "sql"}, {"delete", "-", "sql"},
                                       {"other", "-", "sql"}};
    static constexpr std::string_view words[] = {"select", "insert", "update", "delete"};
    std::size_t start = sql.find_first_not_of(" \t\r\n(");
    std::string_view head = start == std::string_view::npos ? "" : sql.substr(start, 6);
    for (std::size_t i = 0; i < std::size(words); ++i) {
        bool same = head.size() == 6;
        for (std::size_t c = 0; same && c < 6; ++c) same = (head[c] | 0x20) == words[i][c];
        if (same) return kinds[i];
    }
    return kinds[std::size(words)];
}

}  // namespace dbsup
