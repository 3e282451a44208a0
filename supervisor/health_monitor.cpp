#include "supervisor/health_monitor.hpp"

#include <spdlog/spdlog.h>

#include "shared/background_thread.hpp"
#include "shared/monitoring/database_health.hpp"

namespace dbsup {

HealthMonitor::HealthMonitor(Config config) : config_(std::move(config)) {
    thread_ = start_background_thread([this] { run(); });
}

HealthMonitor::~HealthMonitor() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
}

nlohmann::json HealthMonitor::reports() const {
    std::lock_guard lock(mutex_);
    return reports_;
}

void HealthMonitor::set_config(Config config) {
    {
        std::lock_guard lock(mutex_);
        config_ = std::move(config);
        config_changed_ = true;
    }
    wake_.notify_one();
}

void HealthMonitor::run() noexcept {
    for (;;) {
        Config config;
        {
            std::lock_guard lock(mutex_);
            if (stopping_) return;
            config = config_;
            config_changed_ = false;
        }
        check(config);
        std::unique_lock lock(mutex_);
        wake_.wait_for(lock, kEvery, [this] { return stopping_ || config_changed_; });
    }
}

void HealthMonitor::check(const Config& config) noexcept {
    try {
        nlohmann::json before = reports();
        nlohmann::json reports = nlohmann::json::object();
        for (const HealthReport& r : DatabaseHealth::check_all(config, "dbsupervisor/health")) {
            const bool was_ok = before.value(r.name, nlohmann::json::object()).value("ok", true);
            if (was_ok && !r.ok)
                spdlog::warn("health: database '{}' is unhealthy: {}", r.name, r.error);
            if (!was_ok && r.ok) spdlog::info("health: database '{}' is healthy again", r.name);
            reports[r.name] = r.to_json();
        }
        std::lock_guard lock(mutex_);
        reports_ = std::move(reports);
    } catch (const std::exception& e) {
        spdlog::error("health: the checks failed: {}", e.what());
    }
}

}  // namespace dbsup
