#include "shared/monitoring/database_health.hpp"

#include <chrono>
#include <ctime>

#include "config/password_resolver.hpp"
#include "shared/clock.hpp"
#include "shared/db/engine.hpp"

namespace dbsup {
namespace {

// Other sessions on this database; this check's own connection is not one.
void read_activity(Connection& c, HealthReport& report) {
    Result r = c.execute(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE state = 'active') FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        {});
    report.connections = r.rows.at(0).get<std::int64_t>(0);
    report.active_queries = r.rows.at(0).get<std::int64_t>(1);
}

}  // namespace

nlohmann::json HealthReport::to_json() const {
    auto or_null = [](const std::optional<std::int64_t>& v) -> nlohmann::json {
        return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
    };
    return {{"ok", ok},
            {"optional", optional},
            {"checked_at", checked_at},
            {"latency_seconds", latency_seconds},
            {"version", version},
            {"connections", or_null(connections)},
            {"active_queries", or_null(active_queries)},
            {"error", error.empty() ? nlohmann::json(nullptr) : nlohmann::json(error)}};
}

HealthReport DatabaseHealth::check(const DatabaseConfig& db, const std::string& application_name) {
    HealthReport report;
    report.name = db.name;
    report.url = db.url.redacted();
    report.backend = db.url.backend;
    report.optional = db.optional;
    report.checked_at = utc_now();
    const auto start = std::chrono::steady_clock::now();
    try {
        Engine engine(db, PasswordResolver::resolve(db), application_name);
        auto connection = engine.connect();
        connection->execute("SELECT 1", {});
        report.latency_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        report.version = connection->server_version();
        if (report.backend == Backend::postgresql) read_activity(*connection, report);
        report.ok = true;
    } catch (const std::exception& e) {
        report.latency_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        report.error = e.what();
    }
    return report;
}

std::vector<HealthReport> DatabaseHealth::check_all(const Config& config,
                                                    const std::string& application_name) {
    std::vector<HealthReport> reports;
    for (const auto& [name, db] : config.databases)
        reports.push_back(check(db, application_name));
    return reports;
}

}  // namespace dbsup
