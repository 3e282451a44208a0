#include "worker/job_runner.hpp"

#include <spdlog/spdlog.h>

#include "shared/db/database_manager.hpp"
#include "shared/errors.hpp"
#include "shared/metrics/started_mark.hpp"
#include "worker/batch_transaction.hpp"
#include "worker/permanent_job_error.hpp"

namespace dbsup {
namespace {

constexpr std::size_t kSucceeded = 0, kRetried = 1, kDead = 2;  // task table columns
constexpr auto kPruneEvery = std::chrono::seconds(60);
// How long jobs may share one transaction: long enough to amortise a commit
// over many quick jobs, short enough that a slow one does not hold the others.
constexpr auto kBatchWindow = std::chrono::milliseconds(20);

std::uint64_t ns_since(std::chrono::steady_clock::time_point start) {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now() - start)
                                          .count());
}

}  // namespace

JobRunner::JobRunner(const Config& config, const TaskRegistry& tasks, ShmWorkerSlot& slot,
                     std::string owner)
    : config_(config),
      queue_(Queue::from_config(config)),
      retry_(config.resilience.retry),
      tasks_(tasks),
      slot_(slot),
      owner_(std::move(owner)) {}

JobRunner::~JobRunner() {
    request_stop();
    join();
}

void JobRunner::start() {
    auto threads = static_cast<std::size_t>(config_.worker.threads);
    threads_running_ = threads + 1;
    for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this, i] { work_loop(i); });
    threads_.emplace_back([this] { housekeeping_loop(); });
}

void JobRunner::request_stop() noexcept {
    {
        std::lock_guard lock(wake_mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
}

bool JobRunner::stopped() const noexcept { return threads_running_.load() == 0; }

void JobRunner::join() noexcept {
    for (std::thread& t : threads_)
        if (t.joinable()) t.join();
    threads_.clear();
}

void JobRunner::pause(std::chrono::milliseconds ms) {
    std::unique_lock lock(wake_mutex_);
    wake_.wait_for(lock, ms, [this] { return stopping_.load(); });
}

void JobRunner::track(const std::vector<Job>& jobs, bool working) {
    std::lock_guard lock(working_mutex_);
    for (const Job& job : jobs) {
        if (working)
            working_.insert(job.id);
        else
            working_.erase(job.id);
    }
}

std::vector<std::string> JobRunner::working_ids() const {
    std::lock_guard lock(working_mutex_);
    return {working_.begin(), working_.end()};
}

void JobRunner::work_loop(std::size_t index) {
    Session& queue_session = DatabaseManager::instance().session(config_.queue.database);
    const Runner runner{Queue::runner_owner(owner_, index),
                        index < ShmWorkerSlot::kMaxRunners ? &slot_.runners[index] : nullptr};
    const auto poll = std::chrono::milliseconds(config_.queue.poll_interval_ms);
    const auto batch = static_cast<std::size_t>(config_.queue.claim_batch);
    auto error_pause = poll;
    std::vector<Job> next;  // claimed with the previous batch's commit
    while (!stopping_) {
        try {
            std::vector<Job> jobs = next.empty() ? queue_.claim(queue_session, runner.owner, batch)
                                                 : std::move(next);
            next.clear();
            error_pause = poll;
            if (jobs.empty()) {
                pause(poll);
                continue;
            }
            slot_.add(Counter::jobs_claimed, jobs.size());
            track(jobs, true);
            try {
                next = run_claimed(jobs, queue_session, runner);
            } catch (...) {
                track(jobs, false);
                throw;
            }
            // Settled, or given up on (its failure could not be recorded): from
            // now on its lease runs out, and any worker may rescue it.
            track(jobs, false);
        } catch (const std::exception& e) {
            // The database is away: say so, and try again less and less often.
            spdlog::warn("worker thread {} (pid {}): cannot claim jobs: {}", index, getpid(),
                         e.what());
            pause(error_pause);
            error_pause = std::min(error_pause * 2, std::chrono::milliseconds(5000));
        }
    }
    if (!next.empty()) {  // claimed as the stop came: back to available, no attempt counted
        release(next, queue_session, runner.owner);
        track(next, false);
    }
    --threads_running_;
}

// Jobs whose task runs on the queue's database share transactions (see
// BatchTransaction). A job on another database, a job tried before (it may be
// what broke, or killed, its last batch: on its own it costs no neighbour an
// attempt), and any job of a batch that could not commit runs on its own with
// run_job(). The last commit also claims the next jobs, which it returns
// (tracked as working, so their leases are renewed).
std::vector<Job> JobRunner::run_claimed(std::vector<Job>& jobs, Session& queue_session,
                                        const Runner& runner) {
    const std::int64_t now = Queue::now_ms();
    BatchTransaction batch(queue_session, queue_, runner.owner, kBatchWindow, runner.activity);
    std::vector<std::pair<Job, BatchTransaction::Failure>> failures;
    std::vector<Job> next;
    auto settle = [&](std::size_t claim_next) {
        BatchTransaction::Flushed flushed = batch.flush(claim_next);
        if (claim_next > 0) {
            next = std::move(flushed.claimed);
            track(next, true);
        }
        for (const auto& done : flushed.succeeded) on_success(done.job, done.run_ns);
        for (const Job& job : flushed.redo) run_job(job, queue_session, runner);
        for (const auto& [job, f] : failures)
            on_failure(job, queue_session, runner.owner, f.error, f.permanent, 0);
        failures.clear();
    };
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        if (stopping_) {
            settle(0);
            release(std::vector<Job>(jobs.begin() + static_cast<std::ptrdiff_t>(i), jobs.end()),
                    queue_session, runner.owner);
            return {};
        }
        const Job& job = jobs[i];
        auto waited = std::max<std::int64_t>(0, now - job.run_at_ms);
        slot_.timer(Timer::job_wait).record(static_cast<std::uint64_t>(waited) * 1'000'000ULL);
        const TaskDefinition* task = tasks_.find(job.task);
        nlohmann::json payload = nlohmann::json::parse(job.payload, nullptr, false);
        if (!task || payload.is_discarded() || !payload.is_object()) {
            failures.push_back({job, {permanent_reason(job, task), true}});
        } else if (task->database != config_.queue.database || job.attempts > 1) {
            settle(0);
            run_job(job, queue_session, runner);
        } else if (auto failure = batch.run(job, *task, payload)) {
            failures.push_back({job, *failure});
        }
        if (batch.due() && i + 1 < jobs.size()) settle(0);
    }
    settle(stopping_ ? 0 : static_cast<std::size_t>(config_.queue.claim_batch));
    return next;
}

std::string JobRunner::permanent_reason(const Job& job, const TaskDefinition* task) {
    return task ? "the payload is not a JSON object" : "unknown task '" + job.task + "'";
}

void JobRunner::release(const std::vector<Job>& jobs, Session& queue_session,
                        const std::string& owner) {
    try {
        slot_.add(Counter::jobs_released, queue_.release(queue_session, jobs, owner));
    } catch (const std::exception& e) {
        spdlog::warn("worker (pid {}): cannot release {} claimed jobs ({}); their leases will "
                     "expire", getpid(), jobs.size(), e.what());
    }
}

void JobRunner::run_job(const Job& job, Session& queue_session, const Runner& runner) {
    const Clock::time_point started = Clock::now();
    const std::string& owner = runner.owner;
    const TaskDefinition* task = tasks_.find(job.task);
    nlohmann::json payload = nlohmann::json::parse(job.payload, nullptr, false);
    if (!task || payload.is_discarded() || !payload.is_object())
        return on_failure(job, queue_session, owner, permanent_reason(job, task), true, 0);
    Session& session = DatabaseManager::instance().session(task->database);
    const bool same_database = task->database == config_.queue.database;
    // A transient error (serialization failure, deadlock, busy, lost connection)
    // is retried here, within the job's own timeout, before it costs an attempt.
    std::optional<Clock::time_point> deadline;
    if (task->timeout_ms > 0) deadline = started + std::chrono::milliseconds(task->timeout_ms);
    try {
        bool completed;
        {
            StartedMark mark(runner.activity, job.id);
            completed = retry_.run(
                [&] { return try_job(job, *task, payload, session, same_database, deadline, owner); },
                deadline, [&](const Error&) { slot_.add(Counter::transactions_retried); });
        }
        if (!completed) {
            spdlog::warn("job {} ({}): its lease was taken back before it completed; its work "
                         "was rolled back", job.id, job.task);
            return;
        }
        // Another database: the task's work is committed first, so a crash in
        // between runs it again (at least once); same database: exactly once.
        if (!same_database)
            queue_session.transact([&](Session& s) { queue_.complete(s, job, owner); });
        on_success(job, ns_since(started));
    } catch (const PermanentJobError& e) {
        on_failure(job, queue_session, owner, e.what(), true, ns_since(started));
    } catch (const std::exception& e) {
        on_failure(job, queue_session, owner, e.what(), false, ns_since(started));
    }
}

// One try of a job on its own: the task's work, and on the queue's database
// its completion, in one transaction. False when the lease was lost meanwhile.
bool JobRunner::try_job(const Job& job, const TaskDefinition& task,
                        const nlohmann::json& payload, Session& session, bool same_database,
                        std::optional<Clock::time_point> deadline, const std::string& owner) {
    try {
        session.begin(Connection::BeginMode::deferred, deadline);
        task.handler(job, payload, session);
        if (same_database && !queue_.complete(session, job, owner)) {
            session.rollback();
            return false;
        }
        session.commit();
        return true;
    } catch (...) {
        session.rollback();
        throw;
    }
}

void JobRunner::count_task(const Job& job, std::size_t column, std::uint64_t ns) {
    slot_.timer(Timer::job_run).record(ns);
    if (ShmLabelRow* row = slot_.tasks.find_or_add(job.task, label_mutex_)) {
        row->counters[column].fetch_add(1, std::memory_order_relaxed);
        row->seconds.record(ns);
    }
}

void JobRunner::on_success(const Job& job, std::uint64_t run_ns) {
    slot_.add(Counter::jobs_succeeded);
    count_task(job, kSucceeded, run_ns);
}

void JobRunner::on_failure(const Job& job, Session& queue_session, const std::string& owner,
                           const std::string& error, bool permanent, std::uint64_t run_ns) {
    try {
        switch (queue_.fail(queue_session, job, owner, error, permanent)) {
            case Queue::Outcome::retried:
                slot_.add(Counter::jobs_retried);
                count_task(job, kRetried, run_ns);
                break;
            case Queue::Outcome::dead:
                slot_.add(Counter::jobs_dead);
                count_task(job, kDead, run_ns);
                spdlog::warn("job {} ({}) is dead after {} attempt(s): {}", job.id, job.task,
                             job.attempts, error);
                break;
            case Queue::Outcome::lost: break;
        }
    } catch (const std::exception& e) {
        spdlog::warn("job {} ({}): cannot record its failure ({}); its lease will expire",
                     job.id, job.task, e.what());
    }
}

void JobRunner::housekeeping_loop() {
    Session& session = DatabaseManager::instance().session(config_.queue.database);
    const auto every = std::chrono::milliseconds(std::max<std::int64_t>(
        100, std::min<std::int64_t>(config_.queue.lease_s * 1000 / 3, 5000)));
    Clock::time_point next_prune = Clock::now();
    while (!stopping_) {
        try {
            queue_.renew(session, owner_, working_ids());
            if (std::size_t n = queue_.rescue_expired(session)) {
                slot_.add(Counter::jobs_rescued, n);
                spdlog::warn("worker (pid {}): took back {} job(s) whose lease expired",
                             getpid(), n);
            }
            if (Clock::now() >= next_prune) {
                queue_.prune(session);
                next_prune = Clock::now() + kPruneEvery;
            }
        } catch (const std::exception& e) {
            spdlog::warn("worker (pid {}): queue housekeeping failed: {}", getpid(), e.what());
        }
        pause(every);
    }
    --threads_running_;
}

}  // namespace dbsup
