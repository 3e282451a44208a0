// Runs the [schedules.*] of the config: at each firing one job is enqueued.
// There is no leader: every supervisor on the queue's database runs every
// schedule, and the database decides which one enqueues a firing
// (ScheduleLedger: the mark moves once, with the job's insert in the same
// transaction). Firings missed while no supervisor ran are handled by each
// schedule's catch_up (ScheduleTimes::due).
//
// The scheduler has its own thread and session, sleeps until the next firing
// (no polling: an idle schedule costs nothing), and reads the database's
// clock (Queue::sync_clock), so supervisors on hosts with skewed clocks agree
// on when a firing has come. A database that is away is logged and retried
// every second; the firings come once it is back, per catch_up.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "shared/db/session.hpp"
#include "shared/queue/queue.hpp"
#include "supervisor/schedule_times.hpp"

namespace dbsup {

class Scheduler {
public:
    /// Starts the thread when the config has schedules (and `start`: a test
    /// drives fire_due() itself).
    explicit Scheduler(const Config& config, bool start = true);
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    /// Ends the thread; a firing being enqueued commits or rolls back first. Idempotent.
    void stop() noexcept;

    /// Handles every schedule whose firing has come by `now_ms` (the queue's
    /// clock), in one transaction each. Returns how many jobs were enqueued.
    /// The thread calls it; public for tests, which bring their own session.
    std::size_t fire_due(Session& session, std::int64_t now_ms);

    /// The earliest next firing of any schedule (queue clock, ms), if any.
    std::optional<std::int64_t> next_due() const;

    /// {"NAME": {"enqueued_total", "next_at_ms"}} for the stats file.
    nlohmann::json stats() const;

private:
    static constexpr std::int64_t kAtOnce = INT64_MIN;
    static constexpr std::int64_t kNever = INT64_MAX;
    struct Entry {
        ScheduleConfig config;
        ScheduleTimes times;
        /// When to look again (queue clock, ms): kAtOnce until first looked at,
        /// kNever when the schedule fires no more.
        std::atomic<std::int64_t> next_ms{kAtOnce};
        std::atomic<std::uint64_t> enqueued{0};
    };

    void run() noexcept;
    /// One schedule's firings up to now; how many jobs it enqueued.
    std::size_t fire(Session& session, Entry& entry, std::int64_t now_ms);
    std::size_t enqueue(Session& session, const Entry& entry,
                        const std::vector<std::int64_t>& firings) const;
    /// How long the thread may sleep before a firing comes (at most a minute).
    std::chrono::milliseconds sleep_time() const;

    Queue queue_;
    std::string database_;
    std::vector<std::unique_ptr<Entry>> entries_;
    bool error_logged_ = false;  // the thread's only

    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;  // guarded by mutex_
    std::thread thread_;  // last: starts once everything above is built
};

}  // namespace dbsup
