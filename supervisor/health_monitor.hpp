// The stats file's `health` section: every database checked (DatabaseHealth)
// at start and then every 10 s, on the monitor's own thread. A check opens a
// connection, which may take up to its connect_timeout (a host that drops
// packets): the supervisor's event loop only ever reads the latest reports,
// so signals, respawns, heartbeats and /metrics never wait for a database.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "config/config.hpp"

namespace dbsup {

class HealthMonitor {
public:
    static constexpr std::chrono::seconds kEvery{10};

    /// Starts the monitor's thread; the first check begins at once.
    explicit HealthMonitor(Config config);
    /// Stops the thread (a check under way finishes first: at most its connect_timeout).
    ~HealthMonitor();
    HealthMonitor(const HealthMonitor&) = delete;
    HealthMonitor& operator=(const HealthMonitor&) = delete;

    /// The latest reports by database name (empty until the first check ends).
    nlohmann::json reports() const;
    /// The databases to check from now on (a reload); checks them at once.
    void set_config(Config config);

private:
    void run() noexcept;
    void check(const Config& config) noexcept;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    Config config_;         // guarded by mutex_
    bool config_changed_ = false;  // guarded by mutex_
    bool stopping_ = false;        // guarded by mutex_
    nlohmann::json reports_ = nlohmann::json::object();  // guarded by mutex_
    std::thread thread_;    // last: starts once everything above is built
};

}  // namespace dbsup
