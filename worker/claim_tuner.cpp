#include "worker/claim_tuner.hpp"

#include <algorithm>

namespace dbsup {
namespace {

// Smoothing weights of a new observation: the average over every job moves
// slowly (a mix of 10% slow jobs must not swing it job by job); a task's own
// time follows its last few runs.
constexpr double kAverageWeight = 0.05;
constexpr double kTaskWeight = 0.3;
constexpr double kLastingNs = 1e6;

double smoothed(double old, double sample, double weight) {
    return old == 0 ? sample : old + weight * (sample - old);
}

}  // namespace

ClaimTuner::ClaimTuner(std::size_t cap, std::chrono::milliseconds target)
    : cap_(std::max<std::size_t>(1, cap)),
      target_ns_(static_cast<double>(std::chrono::nanoseconds(target).count())),
      size_(std::min(cap_, kFirstSize)) {}

std::size_t ClaimTuner::limit() const noexcept {
    if (average_ns_ <= 0) return cap_;
    const double jobs = target_ns_ / average_ns_;
    return jobs >= static_cast<double>(cap_) ? cap_ : std::max<std::size_t>(1, static_cast<std::size_t>(jobs));
}

void ClaimTuner::claimed(std::size_t asked, std::size_t got) noexcept {
    if (got >= asked && asked > 0) size_ = std::min(size_ * 2, limit());
    size_ = std::max<std::size_t>(1, std::min(size_, limit()));
}

void ClaimTuner::ran(const std::string& task, std::uint64_t ns) {
    const auto sample = static_cast<double>(ns);
    average_ns_ = smoothed(average_ns_, sample, kAverageWeight);
    TaskTime& t = task_ns_[task];
    t.smoothed = smoothed(t.smoothed, sample, kTaskWeight);
    t.last = sample;
    size_ = std::max<std::size_t>(1, std::min(size_, limit()));
}

bool ClaimTuner::slow(const std::string& task) const {
    auto it = task_ns_.find(task);
    return it != task_ns_.end() && it->second.smoothed > target_ns_ && it->second.last > target_ns_;
}

bool ClaimTuner::lasts(const std::string& task) const {
    auto it = task_ns_.find(task);
    return it != task_ns_.end() && it->second.smoothed >= kLastingNs;
}

void ClaimTuner::order(std::vector<Job>& jobs) const {
    if (task_ns_.empty()) return;
    std::stable_partition(jobs.begin(), jobs.end(), [this](const Job& j) { return !slow(j.task); });
}

}  // namespace dbsup
