#include "supervisor/queue_keeper.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>

#include "shared/db/database_manager.hpp"

namespace dbsup {

QueueKeeper::QueueKeeper(const Config& config)
    : queue_(Queue::from_config(config)), database_(config.queue.database) {}

void QueueKeeper::release_claims(std::size_t slot, pid_t pid, const std::string& reason) noexcept {
    std::string owner = Queue::owner_id(static_cast<std::uint64_t>(getpid()), slot,
                                        static_cast<std::uint64_t>(pid));
    try {
        Session& session = DatabaseManager::instance().session(database_);
        std::size_t n = queue_.release_owner(session, owner, reason);
        rescued_total_ += n;
        if (n > 0) spdlog::info("worker {} (pid {}): {} claimed job(s) put back", slot, pid, n);
    } catch (const std::exception& e) {
        spdlog::warn("worker {} (pid {}): cannot put back its claims now ({}); their leases "
                     "will expire", slot, pid, e.what());
    }
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
