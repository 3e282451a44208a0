#include "shared/db/database_verifier.hpp"

#include <chrono>

#include "config/password_resolver.hpp"
#include "shared/db/engine.hpp"

namespace dbsup {
namespace {

DatabaseStatus check(const DatabaseConfig& db, const std::string& application_name) {
    DatabaseStatus status;
    status.name = db.name;
    status.url = db.url.redacted();
    status.optional = db.optional;
    auto start = std::chrono::steady_clock::now();
    try {
        Engine engine(db, PasswordResolver::resolve(db), application_name);
        auto connection = engine.connect();
        connection->execute("SELECT 1", {});
        status.version = connection->server_version();
        status.ok = true;
    } catch (const std::exception& e) {
        status.error = e.what();
    }
    status.latency_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
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
