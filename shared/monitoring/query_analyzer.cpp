#include "shared/monitoring/query_analyzer.hpp"

#include <cstdio>
#include <sstream>

namespace dbsup {
namespace {

QueryPlan explain_postgres(Session& session, const std::string& sql, const Params& params) {
    QueryPlan out{Backend::postgresql, nullptr};
    session.begin();
    try {
        Result r = session.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params);
        out.plan = nlohmann::json::parse(r.rows.at(0).get<std::string>(0));
    } catch (...) {
        session.rollback();
        throw;
    }
    session.rollback();  // always: what the statement changed is undone
    return out;
}

QueryPlan explain_sqlite(Session& session, const std::string& sql, const Params& params) {
    QueryPlan out{Backend::sqlite, nlohmann::json::array()};
    session.begin();
    try {
        Result r = session.execute("EXPLAIN QUERY PLAN " + sql, params);
        for (const Row& row : r.rows)
            out.plan.push_back({{"id", row.get<std::int64_t>(0)},
                                {"parent", row.get<std::int64_t>(1)},
                                {"detail", row.get<std::string>(3)}});
    } catch (...) {
        session.rollback();
        throw;
    }
    session.rollback();
    return out;
}

std::string number(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.3f", v);
    return b;
}

void postgres_node(const nlohmann::json& node, int depth, std::ostringstream& out) {
    out << std::string(static_cast<std::size_t>(depth) * 2, ' ') << "-> "
        << node.value("Node Type", "?");
    if (node.contains("Relation Name")) out << " on " << node["Relation Name"].get<std::string>();
    if (node.contains("Index Name")) out << " using " << node["Index Name"].get<std::string>();
    out << "  (rows " << node.value("Actual Rows", 0.0) << ", loops "
        << node.value("Actual Loops", 0.0) << ", "
        << number(node.value("Actual Total Time", 0.0)) << " ms";
    if (node.contains("Shared Hit Blocks"))
        out << ", buffers hit " << node["Shared Hit Blocks"] << " read "
            << node.value("Shared Read Blocks", 0);
    out << ")\n";
    for (const auto& child : node.value("Plans", nlohmann::json::array()))
        postgres_node(child, depth + 1, out);
}

void sqlite_node(const nlohmann::json& rows, std::int64_t parent, int depth,
                 std::ostringstream& out) {
    for (const auto& row : rows) {
        if (row["parent"] != parent) continue;
        out << std::string(static_cast<std::size_t>(depth) * 2, ' ') << "-> "
            << row["detail"].get<std::string>() << "\n";
        sqlite_node(rows, row["id"].get<std::int64_t>(), depth + 1, out);
    }
}

}  // namespace

QueryPlan QueryAnalyzer::analyze(Session& session, const std::string& sql, const Params& params) {
    return session.backend() == Backend::postgresql ? explain_postgres(session, sql, params)
                                                    : explain_sqlite(session, sql, params);
}

std::string QueryPlan::to_text() const {
    std::ostringstream out;
    if (backend == Backend::sqlite) {
        out << "SQLite query plan (EXPLAIN QUERY PLAN; the statement was not run)\n";
        sqlite_node(plan, 0, 0, out);
        return out.str();
    }
    const nlohmann::json& top = plan.at(0);
    out << "PostgreSQL plan (EXPLAIN ANALYZE; the statement ran and was rolled back)\n";
    postgres_node(top.at("Plan"), 0, out);
    out << "Planning time " << number(top.value("Planning Time", 0.0)) << " ms, execution time "
        << number(top.value("Execution Time", 0.0)) << " ms\n";
    return out.str();
}

}  // namespace dbsup
