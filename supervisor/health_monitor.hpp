// The stats file's `health` section: every database checked (DatabaseHealth)
// at start and then every 10 s, not on every stats write: a check opens a
// connection, and the supervisor's event loop should not pay that each tick.
#pragma once

#include <chrono>

#include <nlohmann/json.hpp>

#include "config/config.hpp"

namespace dbsup {

class HealthMonitor {
public:
    static constexpr std::chrono::seconds kEvery{10};

    /// The latest reports by database name, checking again when they are due.
    const nlohmann::json& refresh(const Config& config);

private:
    nlohmann::json reports_ = nlohmann::json::object();
    std::chrono::steady_clock::time_point next_check_{};
};

}  // namespace dbsup
