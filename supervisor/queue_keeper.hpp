// The supervisor's side of the job queue: it takes back the claims of a worker
// that died (at once, instead of waiting for their leases to expire) and reads
// the queue's depth for the stats file. It uses the supervisor process's own
// DatabaseManager; a database that is away is logged, never fatal here.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "config/config.hpp"
#include "shared/metrics/shm_layout.hpp"
#include "shared/queue/queue.hpp"

namespace dbsup {

class QueueKeeper {
public:
    explicit QueueKeeper(const Config& config);

    /// Puts back every job the worker in `slot` with `pid` still held; `shm` is
    /// its slot, read for the claims it had started (they alone count an attempt).
    void release_claims(std::size_t slot, pid_t pid, const ShmWorkerSlot& shm,
                        const std::string& reason) noexcept;
    /// The claims a dead worker had started, as its runner threads marked them.
    static Queue::StartedClaims started_claims(const ShmWorkerSlot& shm,
                                               const std::string& worker_owner);
    /// Jobs by state, read again only after depth_wait() of the last read unless
    /// `now`; the last known figures when the database is away.
    const nlohmann::json& refresh_depth(bool now = false) noexcept;
    /// How long to wait after a depth count that took `took`: at least a second,
    /// and fifty times the count, so counting never takes more than 2% of the
    /// database's time however many finished jobs the table keeps.
    static std::chrono::steady_clock::duration depth_wait(std::chrono::steady_clock::duration took);
    std::uint64_t rescued_total() const noexcept { return rescued_total_; }

private:
    Queue queue_;
    std::string database_;
    std::uint64_t rescued_total_ = 0;
    nlohmann::json depth_ = nlohmann::json::object();
    bool depth_error_logged_ = false;
    std::chrono::steady_clock::time_point next_depth_at_{};
};

}  // namespace dbsup
