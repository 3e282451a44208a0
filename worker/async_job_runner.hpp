// The job runner's async mode ([worker] mode = "async"): one event-loop thread
// keeps up to max_in_flight jobs running at once. Coroutine handlers
// (TaskRegistry::add_async) and SQL tasks on the queue's database run there,
// on the worker's async pool: the task's work and the job's completion go in
// one transaction (exactly once, as in the sync runner), sent together with
// the completion in one round trip. Other tasks (C++ sync handlers, commands,
// tasks on another database) run the sync runner's way on `threads` threads
// beside the loop.
//
// Claims, failures and give-backs are the queue's sync statements, run on two
// helper threads so the loop never blocks; one of them also sleeps on the
// WakeSignal while the queue is empty. Each job in flight marks its start in
// its own entry of the slot's runner table (ShmRunnerActivity), so a worker
// killed with many jobs in flight charges an attempt to those only. An
// operator's cancel of a job in flight cancels its coroutine where it waits
// (Asio's terminal cancellation) and its statement on the server. A stop
// claims nothing more and lets every job in flight finish (the drain).
//
// It is the JobRunner's other half: leases, cancels, unsettled outcomes and
// counters stay the JobRunner's (its housekeeping thread serves both modes).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "shared/db/async_connection.hpp"
#include "shared/queue/job.hpp"
#include "shared/resilience/error_backoff.hpp"
#include "worker/task_registry.hpp"

namespace dbsup {

class JobRunner;
struct ShmRunnerActivity;

class AsyncJobRunner {
public:
    explicit AsyncJobRunner(JobRunner& runner);
    ~AsyncJobRunner();
    AsyncJobRunner(const AsyncJobRunner&) = delete;
    AsyncJobRunner& operator=(const AsyncJobRunner&) = delete;

    /// The event loop, on the calling thread, until stopped and drained.
    void run();
    /// Wakes the loop to see JobRunner's stop flag. Any thread; never blocks.
    void request_stop() noexcept;

private:
    using Clock = std::chrono::steady_clock;
    /// How a job's try on the loop ended.
    struct Outcome {
        enum class Kind { completed, lease_lost, failed, permanent, not_started } kind;
        std::string error;
        bool transient = false;  // failed, and worth trying again at once
    };

    Awaitable<void> claim_loop();
    /// Claims up to `n` jobs; none (after a logged pause, ErrorBackoff) when the database is away.
    Awaitable<std::vector<Job>> claim(std::size_t n);
    Awaitable<void> run_one(Job job);
    /// One job in one of the loop's ways, `entry` its runner-table entry.
    Awaitable<void> run_job(const Job& job, std::size_t entry);
    Awaitable<Outcome> run_on_loop(const Job& job, const TaskDefinition& task,
                                   const nlohmann::json& payload, std::size_t entry);
    struct JobCancel;
    Awaitable<Outcome> try_once(const Job& job, const TaskDefinition& task,
                                const nlohmann::json& payload,
                                std::optional<Clock::time_point> deadline, JobCancel& cancel);
    /// The sync runner's way for a task the loop cannot run, on a job thread.
    Awaitable<void> run_sync(const Job& job, std::size_t entry);
    /// f() on a helper thread (the queue's sync statements); the caller resumes on the loop.
    template <class F>
    Awaitable<std::invoke_result_t<F>> on_helper(F f);
    Awaitable<void> pause(std::chrono::milliseconds ms);
    /// Wakes the claim loop waiting for room (or for a stop).
    void room_freed() noexcept;
    bool stopping() const noexcept;
    std::string owner() const;

    JobRunner& runner_;
    const std::size_t max_in_flight_;
    boost::asio::io_context loop_;
    boost::asio::thread_pool helpers_{2};  // claims, sleeps, failures: the queue's sync side
    boost::asio::thread_pool job_threads_;  // tasks run the sync way
    boost::asio::steady_timer room_{loop_, Clock::time_point::max()};
    std::size_t in_flight_ = 0;
    std::vector<std::size_t> free_entries_;  // runner-table entries not in use
    std::mt19937_64 random_{std::random_device{}()};
    ErrorBackoff claim_backoff_;
    std::string completion_bound_;  // Queue::completion_bound_statement(), built once
};

}  // namespace dbsup
