// The job runner of one worker process: worker.threads threads, each claiming
// batches from its queue (one, or its share of [queues.*]) with its own
// thread-local Session and running them,
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
#include <memory>
#include <mutex>
#include <unordered_set>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "config/queue_shares.hpp"
#include "shared/metrics/shm_layout.hpp"
#include "shared/queue/queue.hpp"
#include "shared/queue/wake_signal.hpp"
#include "shared/resilience/retry_policy.hpp"
#include "worker/claim_tuner.hpp"
#include "worker/running_jobs.hpp"
#include "worker/task_registry.hpp"

namespace dbsup {

class AsyncJobRunner;

class JobRunner {
public:
    /// wake: the segment's, where idle threads sleep (see WakeSignal);
    /// cancel_epoch: the segment's, moved when an operator cancels a running job.
    JobRunner(const Config& config, const TaskRegistry& tasks, ShmWorkerSlot& slot,
              ShmWake& wake, const std::atomic<std::uint64_t>& cancel_epoch, std::string owner);
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
    friend class AsyncJobRunner;  // the async mode's loop: the other half of this runner
    using Clock = std::chrono::steady_clock;

    /// One job-runner thread: the owner name it claims with, and where it marks
    /// the claims it has started for the supervisor (see ShmRunnerActivity).
    /// A queue the worker takes jobs from, with its share of the threads
    /// ([queues.NAME]): its own claims, so one flooded with slow jobs never
    /// holds up another's.
    struct Share {
        Queue queue;            // claims from its config's name
        std::size_t first;      // its first thread's index: the one that always claims
        std::size_t threads;
        std::size_t claim_batch;
    };
    struct Runner {
        std::size_t index;
        std::string owner;
        ShmRunnerActivity* activity;
        const Share* share;
        bool first() const noexcept { return index == share->first; }
    };

    void work_loop(std::size_t index);
    /// A job thread (or the async loop's) has ended: housekeeping may finish.
    void job_thread_ended();
    const Share& share_of(std::size_t index) const;
    static std::vector<Share> make_shares(const Config& config, const Queue& queue);
    void housekeeping_loop();
    /// Waits for the next housekeeping round: `every`, or less when an
    /// operator cancels a job (cancel_epoch_ moved from `seen`) or on a stop.
    void wait_for_round(std::chrono::milliseconds every, bool draining, std::uint64_t& seen);
    /// Stops the running jobs an operator cancelled (RunningJobs::cancel).
    void stop_cancelled(Session& session);
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
    /// Claimed jobs, and whether the queue may hold more.
    struct Claim {
        std::vector<Job> jobs;
        WakeSignal::Ticket ticket{};  // taken before the claim
        bool full = false;            // as many as asked: more may wait
    };
    /// A claim of its own (one thread of this worker at a time).
    Claim claim_own(Session& queue_session, const Runner& runner, ClaimTuner& tuner);
    /// After a claim that asked for `asked`: learns, and wakes one more idle
    /// thread when the claim came back full (more work waits).
    void claimed(ClaimTuner& tuner, Claim& claim, std::size_t asked);
    /// Runs a claim's jobs, their leases renewed meanwhile; the next claim.
    Claim run_tracked(Claim& claim, Session& queue_session, const Runner& runner,
                      ClaimTuner& tuner);
    /// Returns the jobs claimed with its last commit: only with `prefetch`
    /// (after a full claim), and none when stopping.
    Claim run_claimed(std::vector<Job>& jobs, Session& queue_session, const Runner& runner,
                      ClaimTuner& tuner, bool prefetch);
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
    /// Why `job` can never run here (an unknown task, a coroutine task when
    /// coroutines do not run, a payload that is not a JSON object); "" when it can.
    static std::string unrunnable(const Job& job, const TaskDefinition* task,
                                  const nlohmann::json& payload, bool coroutines_run);
    /// Sleeps up to `ms`, waking early on request_stop().
    void pause(std::chrono::milliseconds ms);
    /// A job known to last is about to run: the other threads
    /// claim too from now on.
    void want_helpers();
    bool gains_nothing_from_helpers(const TaskDefinition& task, const Session& queue_session,
                                    const ClaimTuner& tuner) const;
    /// A thread other than the first waits here while the worker's jobs are
    /// quick (see helpers_wanted_).
    void park_helper();
    /// The claimed jobs this worker is still working on: only their leases are renewed.
    void track(const std::vector<Job>& jobs, bool working);
    std::vector<std::string> working_ids() const;

    const Config& config_;
    Queue queue_;  // for what is not a claim: completions, failures, leases
    std::vector<Share> shares_;  // by thread index, in order
    RetryPolicy retry_;
    const TaskRegistry& tasks_;
    ShmWorkerSlot& slot_;
    WakeSignal signal_;
    const std::atomic<std::uint64_t>& cancel_epoch_;
    RunningJobs running_;
    std::string owner_;  // the worker's; each thread claims as Queue::runner_owner(owner_, i)
    std::atomic<bool> stopping_{false};
    std::atomic<std::size_t> threads_running_{0};
    std::atomic<std::size_t> job_threads_running_{0};  // housekeeping renews while > 0
    std::mutex wake_mutex_;
    std::condition_variable wake_;
    std::mutex label_mutex_;  // appends to the slot's task table
    // One claim of its own (claim()) of this worker at a time: its threads
    // take turns instead of skipping each other's locked rows on the server
    // (on SQLite, queueing for its one write lock) while the others run jobs.
    std::mutex claim_mutex_;
    // Whether threads other than the first claim. Jobs known to take under a
    // millisecond gain nothing from more threads of one worker (the worker's
    // processes already run in parallel), only more transactions competing
    // for the server; jobs that wait (on I/O, a sleep, a slow query) do. The
    // first thread judges: on before a job it knows to last (the first of a
    // task teaches it), off again after a claim without one.
    std::atomic<bool> helpers_wanted_{false};
    mutable std::mutex working_mutex_;
    std::unordered_set<std::string> working_;
    std::vector<Unsettled> unsettled_;  // guarded by working_mutex_
    std::unique_ptr<AsyncJobRunner> async_;  // [worker] mode = "async"
    std::vector<std::thread> threads_;
};

}  // namespace dbsup
