// The job runner of one worker process: worker.threads threads, each claiming
// batches from the queue with its own thread-local Session and running them,
// plus one housekeeping thread that renews this worker's leases, takes back
// jobs whose lease expired elsewhere, and settles the outcomes the job threads
// could not record. Housekeeping has a connection of its own, so it never
// waits behind the jobs it protects, and it renews until the last job ends,
// through a drain too.
//
// A job's task runs in one transaction on the task's database; when that is
// the queue's database, the job's completion commits in the same transaction,
// so the task's effect happens exactly once. request_stop() drains: claimed
// jobs not yet started are released without counting an attempt, running ones
// finish. Every outcome is counted in the worker's shared-memory slot, and
// each thread marks there the job it is running, so that if the worker dies
// only its started jobs cost an attempt (see ShmRunnerActivity).
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <condition_variable>
#include <mutex>
#include <unordered_set>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "shared/metrics/shm_layout.hpp"
#include "shared/queue/queue.hpp"
#include "shared/resilience/retry_policy.hpp"
#include "worker/task_registry.hpp"

namespace dbsup {

class JobRunner {
public:
    JobRunner(const Config& config, const TaskRegistry& tasks, ShmWorkerSlot& slot,
              std::string owner);
    ~JobRunner();
    JobRunner(const JobRunner&) = delete;
    JobRunner& operator=(const JobRunner&) = delete;

    void start();
    /// Asks every thread to finish its running job and stop. Never blocks.
    void request_stop() noexcept;
    /// True once every thread has stopped.
    bool stopped() const noexcept;
    void join() noexcept;

private:
    using Clock = std::chrono::steady_clock;

    /// One job-runner thread: the owner name it claims with, and where it marks
    /// the claims it has started for the supervisor (see ShmRunnerActivity).
    struct Runner {
        std::string owner;
        ShmRunnerActivity* activity;
    };

    void work_loop(std::size_t index);
    void housekeeping_loop();
    /// One round of housekeeping; `draining`: renew and settle only.
    void housekeep(Session& session, bool draining);
    /// A job's outcome that its thread could not record (the database was away
    /// or its pool exhausted): housekeeping records it, and renews its lease
    /// meanwhile, so the job neither waits for its lease to expire nor is run
    /// again while it waits.
    struct Unsettled {
        enum class Outcome { give_back, failed, completed };  // given back: no attempt
        Job job;
        std::string owner;
        Outcome outcome;
        std::string error = {};
        bool permanent = false;
    };
    void leave_unsettled(Unsettled unsettled);
    void record(Session& session, const Unsettled& unsettled);
    void complete_elsewhere(const Job& job, Session& queue_session, const std::string& owner,
                            Clock::time_point started);
    void settle_unsettled(Session& session);
    /// Returns the jobs claimed with its last commit (none when stopping).
    std::vector<Job> run_claimed(std::vector<Job>& jobs, Session& queue_session,
                                 const Runner& runner);
    void run_job(const Job& job, Session& queue_session, const Runner& runner);
    /// One try, its transaction bounded by what is left of the job's deadline.
    bool try_job(const Job& job, const TaskDefinition& task, const nlohmann::json& payload,
                 Session& session, bool same_database, std::optional<Clock::time_point> deadline,
                 const std::string& owner);
    void release(const std::vector<Job>& jobs, Session& queue_session, const std::string& owner);
    void on_success(const Job& job, std::uint64_t run_ns);
    void on_failure(const Job& job, Session& queue_session, const std::string& owner,
                    const std::string& error, bool permanent, std::uint64_t run_ns);
    void count_task(const Job& job, std::size_t column, std::uint64_t run_ns);
    static std::string permanent_reason(const Job& job, const TaskDefinition* task);
    /// Sleeps up to `ms`, waking early on request_stop().
    void pause(std::chrono::milliseconds ms);
    /// The claimed jobs this worker is still working on: only their leases are renewed.
    void track(const std::vector<Job>& jobs, bool working);
    std::vector<std::string> working_ids() const;

    const Config& config_;
    Queue queue_;
    RetryPolicy retry_;
    const TaskRegistry& tasks_;
    ShmWorkerSlot& slot_;
    std::string owner_;  // the worker's; each thread claims as Queue::runner_owner(owner_, i)
    std::atomic<bool> stopping_{false};
    std::atomic<std::size_t> threads_running_{0};
    std::atomic<std::size_t> job_threads_running_{0};  // housekeeping renews while > 0
    std::mutex wake_mutex_;
    std::condition_variable wake_;
    std::mutex label_mutex_;  // appends to the slot's task table
    mutable std::mutex working_mutex_;
    std::unordered_set<std::string> working_;
    std::vector<Unsettled> unsettled_;  // guarded by working_mutex_
    std::vector<std::thread> threads_;
};

}  // namespace dbsup
