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

    /// An unlabelled statement's label, by its kind: "select:-:sql",
    /// "insert:-:sql", ..., "other:-:sql" (built once each).
    static const QueryLabel& of_statement(std::string_view sql);

    std::string text;
};

}  // namespace dbsup
