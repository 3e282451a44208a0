#include "supervisor/queue_keeper.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "shared/background_thread.hpp"
#include "shared/db/database_manager.hpp"

namespace dbsup {
namespace {

constexpr auto kRetryEvery = std::chrono::seconds(1);
// No statement of the keeper waits longer than this for a lock: a killed
// worker's backend may hold its rows a while, and a stopping supervisor must
// exit in bounded time (what is not put back then waits for lease expiry).
constexpr std::int64_t kWaitLimitMs = 2000;
// Old succeeded jobs are deleted this many per transaction, so pruning a
// backlog never holds many rows (or the keeper) for long.
constexpr std::size_t kPruneBatch = 1000;
constexpr auto kPruneEvery = std::chrono::seconds(60);
constexpr auto kPruneSlice = std::chrono::milliseconds(500);
// SQLite has one writer, and a writer kept waiting (an enqueuer, a claim) polls
// for the lock with growing sleeps: a pruner that took it back at once after
// each batch would starve them (measured: claims waiting 0.9 s). A pause
// between batches lets each waiting writer in.
constexpr auto kSqlitePruneGap = std::chrono::milliseconds(50);

}  // namespace

QueueKeeper::QueueKeeper(const Config& config, std::chrono::milliseconds prune_delay)
    : queue_(Queue::from_config(config)),
      database_(config.queue.database),
      prune_delay_(prune_delay) {
    thread_ = start_background_thread([this] { run(); });
}

QueueKeeper::~QueueKeeper() { stop(); }

void QueueKeeper::stop() noexcept {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
}

void QueueKeeper::release_claims(std::size_t slot, pid_t pid, const ShmWorkerSlot& shm,
                                 const std::string& reason) {
    std::string owner = Queue::owner_id(static_cast<std::uint64_t>(getpid()), slot,
                                        static_cast<std::uint64_t>(pid));
    Release release{slot, pid, {owner, started_claims(shm, owner), reason}};
    {
        std::lock_guard lock(mutex_);
        pending_.push_back(std::move(release));
    }
    wake_.notify_one();
}

void QueueKeeper::release_orphans(std::vector<Orphan> orphans) {
    {
        std::lock_guard lock(mutex_);
        for (Orphan& o : orphans) pending_.push_back({o.slot, o.pid, std::move(o.worker)});
    }
    wake_.notify_one();
}

void QueueKeeper::run() noexcept {
    std::vector<Release> waiting;  // handed over, not yet put back
    Clock::time_point next_depth = Clock::now();
    Clock::time_point next_retry = Clock::time_point::max();
    Clock::time_point next_prune = Clock::now() + prune_delay_;
    for (;;) {
        std::vector<Release> fresh;
        bool stopping = false;
        {
            std::unique_lock lock(mutex_);
            wake_.wait_until(lock, std::min({next_depth, next_retry, next_prune}),
                             [this] { return stopping_ || !pending_.empty(); });
            fresh.swap(pending_);
            stopping = stopping_;
        }
        const bool retry_due = Clock::now() >= next_retry;
        const bool arrived = !fresh.empty();
        std::move(fresh.begin(), fresh.end(), std::back_inserter(waiting));
        if (arrived || retry_due || stopping) {
            try_releases(waiting, stopping);
            next_retry = waiting.empty() ? Clock::time_point::max() : Clock::now() + kRetryEvery;
        }
        if (stopping) return;
        if (Clock::now() >= next_depth) next_depth = count_depth();
        if (Clock::now() >= next_prune) next_prune = prune();
    }
}

QueueKeeper::Clock::time_point QueueKeeper::prune() noexcept {
    const auto until = Clock::now() + kPruneSlice;
    try {
        Session& session = DatabaseManager::instance().session(database_);
        std::size_t n = kPruneBatch;
        while (n == kPruneBatch && Clock::now() < until) {
            n = queue_.prune(session, kPruneBatch);
            pruned_total_ += n;
            if (n == kPruneBatch && session.backend() == Backend::sqlite)
                std::this_thread::sleep_for(kSqlitePruneGap);
        }
        // A backlog is worked off in slices, the rest of the keeper's work between them.
        return n == kPruneBatch ? Clock::now() : Clock::now() + kPruneEvery;
    } catch (const std::exception& e) {
        spdlog::warn("supervisor: cannot prune old succeeded jobs: {}", e.what());
        return Clock::now() + kPruneEvery;
    }
}

void QueueKeeper::try_releases(std::vector<Release>& releases, bool last) noexcept {
    if (releases.empty()) return;
    try {
        std::vector<Queue::DeadWorker> workers;
        for (const Release& r : releases) workers.push_back(r.worker);
        Session& session = DatabaseManager::instance().session(database_);
        std::vector<Queue::TakenBack> taken =
            queue_.release_workers(session, workers, kWaitLimitMs);
        for (std::size_t i = 0; i < releases.size(); ++i) {
            const Queue::TakenBack& n = taken[i];
            rescued_total_ += n.charged + n.released;
            if (n.charged + n.released > 0)
                spdlog::info("worker {} (pid {}): {} running job(s) taken back (an attempt "
                             "each), {} unstarted claim(s) put back",
                             releases[i].slot, releases[i].pid, n.charged, n.released);
        }
        releases.clear();
    } catch (const std::exception& e) {
        for (Release& r : releases) log_failure(r, last, e);
    }
}

void QueueKeeper::log_failure(Release& r, bool last, const std::exception& e) noexcept {
    if (last)
        spdlog::warn("worker {} (pid {}): cannot put back its claims ({}); their leases "
                     "will expire", r.slot, r.pid, e.what());
    else if (!r.warned)
        spdlog::warn("worker {} (pid {}): cannot put back its claims yet ({}); trying again "
                     "every second", r.slot, r.pid, e.what());
    r.warned = true;
}

Queue::StartedClaims QueueKeeper::started_claims(const ShmWorkerSlot& shm,
                                                 const std::string& worker_owner) {
    Queue::StartedClaims started;
    for (std::size_t i = 0; i < shm.runners.size(); ++i) {
        const ShmRunnerActivity& runner = shm.runners[i];
        switch (runner.read()) {
            case RunnerActivity::one_job: {
                std::string id = runner.read_job_id();
                if (id.size() == 36) started.job_ids.push_back(std::move(id));  // a UUID, or torn
                break;
            }
            case RunnerActivity::batch:
                started.batch_owners.push_back(Queue::runner_owner(worker_owner, i));
                break;
            case RunnerActivity::idle: break;
        }
    }
    return started;
}

std::chrono::steady_clock::duration QueueKeeper::depth_wait(
    std::chrono::steady_clock::duration took) {
    return std::max<std::chrono::steady_clock::duration>(std::chrono::seconds(1), took * 50);
}

nlohmann::json QueueKeeper::depth() const {
    std::lock_guard lock(mutex_);
    return depth_;
}

nlohmann::json QueueKeeper::queues() const {
    std::lock_guard lock(mutex_);
    return queues_;
}

nlohmann::json QueueKeeper::final_depth() noexcept {
    stop();
    count_depth();
    return depth();
}

QueueKeeper::Clock::time_point QueueKeeper::count_depth() noexcept {
    const auto at = Clock::now();
    try {
        Session& session = DatabaseManager::instance().session(database_);
        queue_.sync_clock(session);  // its put-backs and prunes use the database's clock
        // One scan gives both the totals and each queue's (the dashboard's).
        const auto by_queue = queue_.counts_by_queue(session);
        nlohmann::json counts(Queue::totals(by_queue));
        nlohmann::json queues = {{"by_state", by_queue},
                                  {"paused", queue_.paused_queues(session)},
                                  {"oldest_waiting_seconds", queue_.oldest_waiting_seconds(session)},
                                  {"table", queue_.table_stats(session)}};
        const auto took = Clock::now() - at;
        std::lock_guard lock(mutex_);
        depth_ = std::move(counts);
        queues_ = std::move(queues);
        depth_error_logged_ = false;
        return at + depth_wait(took);
    } catch (const std::exception& e) {
        if (!depth_error_logged_)
            spdlog::warn("supervisor: cannot read the queue's depth: {}", e.what());
        depth_error_logged_ = true;
        return at + depth_wait({});  // a failed count is tried again in a second
    }
}

}  // namespace dbsup
