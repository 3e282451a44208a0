// Which jobs each job thread of a worker is running, and on which session, so
// that an operator's cancel request (found by housekeeping, on its own
// thread) can stop them where they are: the stop token their handlers see
// (Job::stop) is requested, and the statement their session runs is
// cancelled on the server. A job on the async runner's event loop is stopped
// by its own hook instead (its coroutine cancelled, its statement too). A
// cancelled job is then failed for good, never retried, and its remaining
// work never started.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <unordered_set>
#include <vector>

#include "shared/db/session.hpp"
#include "shared/queue/job.hpp"

namespace dbsup {

class RunningJobs {
public:
    /// The last_error prefix of a job cancelled while it ran.
    static constexpr const char* kCancelled = "cancelled by operator while running";

    /// What begin() returns: the thread's run ends (end()) when it goes,
    /// however its jobs ended.
    class Scope {
    public:
        Scope(RunningJobs& running, std::size_t thread) : running_(running), thread_(thread) {}
        ~Scope() { running_.end(thread_); }
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;

    private:
        RunningJobs& running_;
        std::size_t thread_;
    };

    explicit RunningJobs(std::size_t threads) : threads_(threads) {}

    /// Thread `thread` starts on `jobs` (their stop tokens are set here), on
    /// `session`, until the Scope goes; `jobs` must outlive it.
    [[nodiscard]] Scope begin(std::size_t thread, std::vector<Job>& jobs, Session& session);
    /// Entry `thread` starts on `jobs` on an event loop: a cancel of one of
    /// them calls on_cancel, under this object's lock, so it must not block.
    [[nodiscard]] Scope begin(std::size_t thread, std::vector<Job>& jobs,
                              std::function<void()> on_cancel);
    /// Its statements now run on `session` (a task on another database).
    void use_session(std::size_t thread, Session& session);
    /// Marks these jobs cancelled and stops the threads running any of them
    /// (Session::cancel blocks for a round trip: call it off the job threads).
    /// Returns the ids newly cancelled.
    std::vector<std::string> cancel(const std::vector<std::string>& ids);
    bool cancelled(const std::string& id) const;
    /// These jobs are done with: their marks go.
    void forget(const std::vector<Job>& jobs);

private:
    void end(std::size_t thread);
    void start(std::size_t thread, std::vector<Job>& jobs, Session* session,
               std::function<void()> on_cancel);

    struct Thread {
        const std::vector<Job>* jobs = nullptr;  // the caller's claim, until end(): not copied
        Session* session = nullptr;
        std::function<void()> on_cancel;
        std::stop_source stop;
    };

    mutable std::mutex mutex_;
    std::vector<Thread> threads_;
    std::unordered_set<std::string> cancelled_;
    // cancelled() is asked for every job: without a cancel, no lock.
    std::atomic<bool> any_cancelled_{false};
};

}  // namespace dbsup
