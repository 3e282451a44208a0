// check_database_health: one fresh connection to a database, a round trip
// timed, its server version, and how busy it is: on PostgreSQL the other
// connections to this database and how many of them run a query right now
// (pg_stat_activity, this check's own backend left out); SQLite has no server,
// so those figures come from a pool's own (given by the caller) or stay unknown.
// Used by `dbsupervisor health`, start-up verification and the stats file.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"

namespace dbsup {

struct HealthReport {
    std::string name;
    std::string url;  // redacted
    Backend backend = Backend::sqlite;
    bool ok = false;
    bool optional = false;
    std::string checked_at;  // UTC, ISO 8601
    double latency_seconds = 0;
    std::string version;
    std::optional<std::int64_t> connections;     // unknown for SQLite without a pool
    std::optional<std::int64_t> active_queries;
    std::string error;

    /// The stats file's health entry (DESIGN section 6).
    nlohmann::json to_json() const;
};

class DatabaseHealth {
public:
    /// Never throws for a database error: it is the report's `error`.
    static HealthReport check(const DatabaseConfig& db, const std::string& application_name);
    /// Every configured database, in name order.
    static std::vector<HealthReport> check_all(const Config& config,
                                               const std::string& application_name);
};

}  // namespace dbsup
