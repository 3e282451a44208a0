// `analyze`: how a database runs one statement. PostgreSQL runs it under
// EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) inside a transaction that is always
// rolled back, so an analysed DELETE deletes nothing; SQLite answers
// EXPLAIN QUERY PLAN, which never runs the statement. Parameters are bound.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "shared/db/session.hpp"

namespace dbsup {

struct QueryPlan {
    Backend backend = Backend::sqlite;
    /// PostgreSQL: EXPLAIN's JSON document; SQLite: [{id, parent, detail}, ...].
    nlohmann::json plan;

    /// An indented tree, one node per line, with PostgreSQL's actual rows and times.
    std::string to_text() const;
};

class QueryAnalyzer {
public:
    /// Leaves the session with no open transaction. @throws Error
    static QueryPlan analyze(Session& session, const std::string& sql, const Params& params);
};

}  // namespace dbsup
