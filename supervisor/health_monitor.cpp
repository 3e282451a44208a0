#include "supervisor/health_monitor.hpp"

#include <spdlog/spdlog.h>

#include "shared/monitoring/database_health.hpp"

namespace dbsup {

const nlohmann::json& HealthMonitor::refresh(const Config& config) {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_check_) return reports_;
    next_check_ = now + kEvery;
    nlohmann::json reports = nlohmann::json::object();
    for (const HealthReport& r : DatabaseHealth::check_all(config, "dbsupervisor/health")) {
        const bool was_ok = reports_.value(r.name, nlohmann::json::object()).value("ok", true);
        if (was_ok && !r.ok)
            spdlog::warn("health: database '{}' is unhealthy: {}", r.name, r.error);
        if (!was_ok && r.ok) spdlog::info("health: database '{}' is healthy again", r.name);
        reports[r.name] = r.to_json();
    }
    reports_ = std::move(reports);
    return reports_;
}

}  // namespace dbsup
