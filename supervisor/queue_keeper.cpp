#include "supervisor/queue_keeper.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>

#include "shared/db/database_manager.hpp"

namespace dbsup {

QueueKeeper::QueueKeeper(const Config& config)
    : queue_(Queue::from_config(config)), database_(config.queue.database) {}

void QueueKeeper::release_claims(std::size_t slot, pid_t pid, const ShmWorkerSlot& shm,
                                 const std::string& reason) noexcept {
    try {
        std::string owner = Queue::owner_id(static_cast<std::uint64_t>(getpid()), slot,
                                            static_cast<std::uint64_t>(pid));
        Session& session = DatabaseManager::instance().session(database_);
        Queue::TakenBack n = queue_.release_worker(session, owner, started_claims(shm, owner), reason);
        rescued_total_ += n.charged + n.released;
        if (n.charged + n.released > 0)
            spdlog::info("worker {} (pid {}): {} running job(s) taken back (an attempt each), {} "
                         "unstarted claim(s) put back", slot, pid, n.charged, n.released);
    } catch (const std::exception& e) {
        spdlog::warn("worker {} (pid {}): cannot put back its claims now ({}); their leases "
                     "will expire", slot, pid, e.what());
    }
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

const nlohmann::json& QueueKeeper::refresh_depth(bool now) noexcept {
    const auto at = std::chrono::steady_clock::now();
    if (!now && at < next_depth_at_) return depth_;
    next_depth_at_ = at + depth_wait({});  // a failed count is tried again in a second
    try {
        auto counts = queue_.counts(DatabaseManager::instance().session(database_));
        next_depth_at_ = at + depth_wait(std::chrono::steady_clock::now() - at);
        depth_ = nlohmann::json(counts);
        depth_error_logged_ = false;
    } catch (const std::exception& e) {
        if (!depth_error_logged_)
            spdlog::warn("supervisor: cannot read the queue's depth: {}", e.what());
        depth_error_logged_ = true;
    }
    return depth_;
}

}  // namespace dbsup
