#include "shared/db/database_verifier.hpp"

#include "shared/monitoring/database_health.hpp"

namespace dbsup {
namespace {

DatabaseStatus check(const DatabaseConfig& db, const std::string& application_name) {
    HealthReport health = DatabaseHealth::check(db, application_name);
    DatabaseStatus status;
    status.name = health.name;
    status.url = health.url;
    status.optional = health.optional;
    status.ok = health.ok;
    status.latency_seconds = health.latency_seconds;
    status.version = health.version;
    status.error = health.error;
    return status;
}

}  // namespace

std::vector<DatabaseStatus> DatabaseVerifier::verify(const Config& config,
                                                     const std::string& application_name) {
    std::vector<DatabaseStatus> statuses;
    for (const auto& [name, db] : config.databases) statuses.push_back(check(db, application_name));
    return statuses;
}

bool DatabaseVerifier::all_usable(const std::vector<DatabaseStatus>& statuses) {
    for (const auto& s : statuses)
        if (s.fatal()) return false;
    return true;
}

}  // namespace dbsup
