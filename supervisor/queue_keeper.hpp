// The supervisor's side of the job queue: it takes back the claims of a worker
// that died (at once, instead of waiting for their leases to expire), counts
// the queue's depth for the stats file, and prunes succeeded jobs past their
// retention (in bounded batches, one pruner per database at a time). Both talk to the database on the
// keeper's own thread, with its own session from the process's DatabaseManager,
// so a database that is locked, slow or away never stalls the supervisor's
// event loop (no stats, no respawns); it is logged, never fatal here.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "shared/metrics/shm_layout.hpp"
#include "shared/queue/queue.hpp"

namespace dbsup {

class QueueKeeper {
public:
    /// Starts the keeper's thread; it counts the depth at once and prunes
    /// after `prune_delay`, then every minute (at once again while a backlog lasts).
    explicit QueueKeeper(const Config& config,
                         std::chrono::milliseconds prune_delay = std::chrono::seconds(10));
    /// stop(): what is still to put back is tried once more first.
    ~QueueKeeper();
    QueueKeeper(const QueueKeeper&) = delete;
    QueueKeeper& operator=(const QueueKeeper&) = delete;

    /// Puts back every job the worker in `slot` with `pid` still held. `shm` is
    /// its slot, read now for the claims it had started (they alone count an
    /// attempt), so the slot may be cleared for its successor on return. The
    /// database work happens on the keeper's thread: this returns at once, and a
    /// release that fails (the database locked or away) is tried every second.
    void release_claims(std::size_t slot, pid_t pid, const ShmWorkerSlot& shm,
                        const std::string& reason);
    /// A worker of a crashed supervisor that died with it, as its stale segment tells.
    struct Orphan {
        std::size_t slot;
        pid_t pid;
        Queue::DeadWorker worker;
    };
    /// Puts back every job these workers held, as release_claims() does.
    void release_orphans(std::vector<Orphan> orphans);
    /// The claims a dead worker had started, as its runner threads marked them.
    static Queue::StartedClaims started_claims(const ShmWorkerSlot& shm,
                                               const std::string& worker_owner);
    /// Jobs by state as last counted (empty until the first count succeeds; the
    /// last known figures while the database is away).
    nlohmann::json depth() const;
    /// As last read with the depth: {"paused": [names], "oldest_waiting_seconds":
    /// {queue: s}, "table": {"bytes", "dead_tuples"} (PostgreSQL)}.
    nlohmann::json queues() const;
    /// The figures of a stopped run: stop(), then count on the caller's thread.
    nlohmann::json final_depth() noexcept;
    /// Ends the keeper's thread after one last try of every release not yet
    /// done (what still fails waits for its leases to expire). Idempotent.
    void stop() noexcept;
    /// How long to wait after a depth count that took `took`: at least a second,
    /// and fifty times the count, so counting never takes more than 2% of the
    /// database's time however many finished jobs the table keeps.
    static std::chrono::steady_clock::duration depth_wait(std::chrono::steady_clock::duration took);
    std::uint64_t rescued_total() const noexcept { return rescued_total_.load(); }
    std::uint64_t pruned_total() const noexcept { return pruned_total_.load(); }

private:
    using Clock = std::chrono::steady_clock;
    struct Release {
        std::size_t slot;
        pid_t pid;
        Queue::DeadWorker worker;
        bool warned = false;
    };

    void run() noexcept;
    /// Tries every release in `releases` in one transaction (one wait for a
    /// locked database, however many workers died); keeps them all if it fails.
    void try_releases(std::vector<Release>& releases, bool last) noexcept;
    void log_failure(Release& release, bool last, const std::exception& e) noexcept;
    /// Counts the depth; returns when to count next.
    Clock::time_point count_depth() noexcept;
    /// Prunes for at most half a second; returns when to prune next.
    Clock::time_point prune() noexcept;

    Queue queue_;
    std::string database_;
    std::chrono::milliseconds prune_delay_;
    std::atomic<std::uint64_t> rescued_total_{0};
    std::atomic<std::uint64_t> pruned_total_{0};
    bool depth_error_logged_ = false;  // the keeper's thread only (or after stop)

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<Release> pending_;  // guarded by mutex_: handed to the thread
    bool stopping_ = false;         // guarded by mutex_
    nlohmann::json depth_ = nlohmann::json::object();  // guarded by mutex_
    nlohmann::json queues_ = nlohmann::json::object();  // guarded by mutex_
    std::thread thread_;  // last: starts once everything above is built
};

}  // namespace dbsup
