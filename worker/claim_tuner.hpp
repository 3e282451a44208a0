// How many jobs one job-runner thread claims at a time, learnt from how long
// its jobs take (DESIGN section 7, "claims that tune themselves"). A claim
// should hold about `target` of work: big enough that a commit (and on SQLite
// a turn at the write lock) serves many quick jobs, small enough that a slow
// job holds few neighbours. The size starts small, doubles while claims come
// back full, and is capped by target / the average job's time and by
// [queue] claim_batch. A task known to take longer than `target` runs after
// the quick jobs of its claim, and the jobs behind it are given back (no
// attempt counted) for other threads, so no job waits behind a slow one.
// One per thread: no locking.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "shared/queue/job.hpp"

namespace dbsup {

class ClaimTuner {
public:
    static constexpr std::size_t kFirstSize = 16;

    ClaimTuner(std::size_t cap, std::chrono::milliseconds target);

    /// How many jobs to claim next.
    std::size_t size() const noexcept { return size_; }
    /// A claim asked for `asked` jobs and got `got`: a full one grows the next.
    void claimed(std::size_t asked, std::size_t got) noexcept;
    /// A job of `task` took `ns`: its own work, not the claim's and commit's
    /// round trips, which a bigger claim shares among more jobs.
    void ran(const std::string& task, std::uint64_t ns);
    /// Whether jobs of `task` are known to take longer than the target (on
    /// average, and the last one too: one job descheduled is not a slow task).
    bool slow(const std::string& task) const;
    /// Whether jobs of `task` are known to take a millisecond or more: work
    /// that may gain from more threads of the same worker (it waits on
    /// something). Unknown tasks do not, until one has run.
    bool lasts(const std::string& task) const;
    /// Known-slow tasks after the others; otherwise the claim's order.
    void order(std::vector<Job>& jobs) const;
    /// The average job's time, ns (0 until one ran).
    double average_ns() const noexcept { return average_ns_; }

private:
    std::size_t limit() const noexcept;

    std::size_t cap_;
    double target_ns_;
    std::size_t size_;
    double average_ns_ = 0;                              // every job, smoothed
    struct TaskTime {
        double smoothed = 0;
        double last = 0;
    };
    std::unordered_map<std::string, TaskTime> task_ns_;
};

}  // namespace dbsup
