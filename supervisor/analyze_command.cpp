#include "supervisor/analyze_command.hpp"

#include "config/sql_text.hpp"

#include <charconv>
#include <iostream>

#include "shared/db/database_manager.hpp"
#include "shared/monitoring/query_analyzer.hpp"
#include "supervisor/cli.hpp"

namespace dbsup {
namespace {

Value parameter(const std::string& text) {
    std::int64_t n = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (error == std::errc() && end == text.data() + text.size() && !text.empty()) return n;
    return text;
}

}  // namespace

int AnalyzeCommand::run(const Config& config, const AnalyzeOptions& o) {
    if (!config.databases.contains(o.database)) {
        std::cerr << "error: analyze --db: no database named '" << o.database
                  << "' is configured (" << config.source << ")\n";
        return kExitUsage;
    }
    // EXPLAIN ANALYZE runs the statement: a second one after it ("...; COMMIT;
    // DELETE ...") would run outside the rollback that keeps analyze harmless.
    if (std::size_t n = count_sql_statements(o.sql); n != 1) {
        std::cerr << "error: analyze: expected exactly one SQL statement, got " << n << "\n";
        return kExitUsage;
    }
    Params params;
    for (const std::string& p : o.params) params.push_back(parameter(p));
    DatabaseManager::instance().init_worker(config.databases, "dbsupervisor/analyze");
    Session& session = DatabaseManager::instance().session(o.database);
    QueryPlan plan = QueryAnalyzer::analyze(session, o.sql, params);
    std::cout << (o.json ? plan.plan.dump(2) + "\n" : plan.to_text());
    return kExitOk;
}

}  // namespace dbsup
