// Names one kind of query for the metrics: "operation:table:service", the
// labels of the original track_query_performance(operation, table, service)
// decorator (DESIGN section 6, queries.by_label). Built once and kept (a static,
// or a member of something long-lived) so the hot path never formats a string.
#pragma once

#include <string>
#include <string_view>

namespace dbsup {

struct QueryLabel {
    QueryLabel(std::string_view operation, std::string_view table, std::string_view service)
        : text(std::string(operation) + ":" + std::string(table) + ":" + std::string(service)) {}

    std::string text;
};

}  // namespace dbsup
