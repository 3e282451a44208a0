#include "worker/running_jobs.hpp"

#include <algorithm>

namespace dbsup {

RunningJobs::Scope RunningJobs::begin(std::size_t thread, std::vector<Job>& jobs,
                                      Session& session) {
    start(thread, jobs, &session, nullptr);
    return Scope(*this, thread);
}

RunningJobs::Scope RunningJobs::begin(std::size_t thread, std::vector<Job>& jobs,
                                      std::function<void()> on_cancel) {
    start(thread, jobs, nullptr, std::move(on_cancel));
    return Scope(*this, thread);
}

void RunningJobs::start(std::size_t thread, std::vector<Job>& jobs, Session* session,
                        std::function<void()> on_cancel) {
    std::lock_guard lock(mutex_);
    Thread& t = threads_.at(thread);
    t.stop = std::stop_source();  // a fresh one: the last claim's may have been requested
    t.session = session;
    t.on_cancel = std::move(on_cancel);
    t.jobs = &jobs;
    const std::stop_token token = t.stop.get_token();
    for (Job& job : jobs) job.stop = token;
}

void RunningJobs::use_session(std::size_t thread, Session& session) {
    std::lock_guard lock(mutex_);
    threads_.at(thread).session = &session;
}

void RunningJobs::end(std::size_t thread) {
    std::lock_guard lock(mutex_);
    Thread& t = threads_.at(thread);
    t.jobs = nullptr;
    t.session = nullptr;
    t.on_cancel = nullptr;
}

std::vector<std::string> RunningJobs::cancel(const std::vector<std::string>& ids) {
    std::vector<std::string> fresh;
    std::lock_guard lock(mutex_);
    for (const std::string& id : ids)
        if (cancelled_.insert(id).second) fresh.push_back(id);
    if (!fresh.empty()) any_cancelled_.store(true, std::memory_order_release);
    for (Thread& t : threads_) {
        const bool hit = t.jobs && std::any_of(t.jobs->begin(), t.jobs->end(), [&](const Job& j) {
            return std::find(fresh.begin(), fresh.end(), j.id) != fresh.end();
        });
        if (!hit) continue;
        t.stop.request_stop();
        // Under the lock: the thread cannot end (and give its connection back) meanwhile.
        if (t.session) t.session->cancel();
        if (t.on_cancel) t.on_cancel();
    }
    return fresh;
}

bool RunningJobs::cancelled(const std::string& id) const {
    if (!any_cancelled_.load(std::memory_order_acquire)) return false;
    std::lock_guard lock(mutex_);
    return cancelled_.count(id) > 0;
}

void RunningJobs::forget(const std::vector<Job>& jobs) {
    std::lock_guard lock(mutex_);
    for (const Job& job : jobs) cancelled_.erase(job.id);
    if (cancelled_.empty()) any_cancelled_.store(false, std::memory_order_release);
}

}  // namespace dbsup
