#include "worker/job_runner.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "shared/clock.hpp"
#include "shared/db/database_manager.hpp"
#include "shared/job_log_scope.hpp"
#include "shared/errors.hpp"
#include "shared/metrics/started_mark.hpp"
#include "shared/resilience/error_backoff.hpp"
#include "worker/async_job_runner.hpp"
#include "worker/batch_transaction.hpp"
#include "worker/permanent_job_error.hpp"
#include "worker/snooze_job.hpp"

namespace dbsup {
namespace {

constexpr std::size_t kSucceeded = 0, kRetried = 1, kDead = 2;  // task table columns
// How long jobs may share one transaction: long enough to amortise a commit
// over many quick jobs, short enough that a slow one does not hold the others.
constexpr auto kBatchWindow = std::chrono::milliseconds(20);
// An idle thread sleeps until woken (WakeSignal); this bounds a sleep should
// every wake be missed (the supervisor's waker stalled): not a poll.
constexpr auto kIdleSafety = std::chrono::seconds(30);

}  // namespace

std::vector<JobRunner::Share> JobRunner::make_shares(const Config& config, const Queue& queue) {
    std::vector<Share> shares;
    std::size_t first = 0;
    for (const QueueShareConfig& q : queue_shares(config)) {
        // renamed(): claims use the clock queue_.sync_clock() measures.
        shares.push_back({queue.renamed(q.name), first, static_cast<std::size_t>(q.threads),
                          static_cast<std::size_t>(q.claim_batch)});
        first += static_cast<std::size_t>(q.threads);
    }
    return shares;
}

const JobRunner::Share& JobRunner::share_of(std::size_t index) const {
    for (const Share& share : shares_)
        if (index < share.first + share.threads) return share;
    return shares_.back();
}

JobRunner::JobRunner(const Config& config, const TaskRegistry& tasks, ShmWorkerSlot& slot,
                     ShmWake& wake, const std::atomic<std::uint64_t>& cancel_epoch,
                     std::string owner)
    : config_(config),
      queue_(Queue::from_config(config)),
      shares_(make_shares(config, queue_)),
      retry_(config.resilience.retry),
      tasks_(tasks),
      slot_(slot),
      signal_(wake),
      cancel_epoch_(cancel_epoch),
      running_(static_cast<std::size_t>(config.worker.mode == "async"
                                            ? std::max(config.worker.threads,
                                                       config.worker.max_in_flight)
                                            : config.worker.threads)),
      owner_(std::move(owner)) {}

JobRunner::~JobRunner() {
    request_stop();
    join();
}

void JobRunner::start() {
    try {  // before the first claim: leases are written on the database's clock
        queue_.sync_clock(DatabaseManager::instance().session(config_.queue.database));
    } catch (const std::exception& e) {
        spdlog::warn("worker (pid {}): cannot read the database's clock yet ({}); using this "
                     "host's until housekeeping can", getpid(), e.what());
    }
    if (config_.worker.mode == "async") {
        async_ = std::make_unique<AsyncJobRunner>(*this);
        threads_running_ = 2;
        job_threads_running_ = 1;
        threads_.emplace_back([this] {
            async_->run();
            job_thread_ended();
        });
    } else {
        auto threads = static_cast<std::size_t>(config_.worker.threads);
        threads_running_ = threads + 1;
        job_threads_running_ = threads;
        for (std::size_t i = 0; i < threads; ++i)
            threads_.emplace_back([this, i] { work_loop(i); });
    }
    threads_.emplace_back([this] { housekeeping_loop(); });
}

void JobRunner::request_stop() noexcept {
    {
        std::lock_guard lock(wake_mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    signal_.rouse_all();  // idle job threads sleep on the segment's word
    if (async_) async_->request_stop();
}

bool JobRunner::stopped() const noexcept { return threads_running_.load() == 0; }

void JobRunner::join() noexcept {
    for (std::thread& t : threads_)
        if (t.joinable()) t.join();
    threads_.clear();
    async_.reset();
}

void JobRunner::pause(std::chrono::milliseconds ms) {
    std::unique_lock lock(wake_mutex_);
    wake_.wait_for(lock, ms, [this] { return stopping_.load(); });
}

// Jobs not known to last a millisecond; and on SQLite, SQL tasks on the
// queue's database, which wait for its one write lock whatever the threads
// (that wait would otherwise make them look slow, and call more threads to
// wait with them).
bool JobRunner::gains_nothing_from_helpers(const TaskDefinition& task, const Session& queue_session,
                                           const ClaimTuner& tuner) const {
    if (!tuner.lasts(task.name)) return true;
    return queue_session.backend() == Backend::sqlite && task.statements &&
           task.database == config_.queue.database;
}

void JobRunner::want_helpers() {
    if (helpers_wanted_.load(std::memory_order_relaxed)) return;
    {
        std::lock_guard lock(wake_mutex_);
        helpers_wanted_ = true;
    }
    wake_.notify_all();
}

void JobRunner::park_helper() {
    std::unique_lock lock(wake_mutex_);
    wake_.wait(lock, [this] { return stopping_.load() || helpers_wanted_.load(); });
}

void JobRunner::track(const std::vector<Job>& jobs, bool working) {
    std::lock_guard lock(working_mutex_);
    for (const Job& job : jobs) {
        if (working) {
            working_.insert(job.id);
            continue;
        }
        // An unsettled job stays renewed until housekeeping has recorded it.
        bool unsettled = std::any_of(unsettled_.begin(), unsettled_.end(),
                                     [&](const Unsettled& u) { return u.job.id == job.id; });
        if (!unsettled) working_.erase(job.id);
    }
}

std::vector<std::string> JobRunner::working_ids() const {
    std::lock_guard lock(working_mutex_);
    return {working_.begin(), working_.end()};
}

JobRunner::Claim JobRunner::claim_own(Session& queue_session, const Runner& runner,
                                      ClaimTuner& tuner) {
    Claim claim;
    claim.ticket = signal_.ticket();  // before the claim: a wake while it runs is not lost
    std::lock_guard claiming(claim_mutex_);
    const std::size_t asked = tuner.size();
    claim.jobs = runner.share->queue.claim(queue_session, runner.owner, asked);
    if (claim.jobs.empty()) slot_.add(Counter::claims_empty);
    claimed(tuner, claim, asked);
    return claim;
}

void JobRunner::claimed(ClaimTuner& tuner, Claim& claim, std::size_t asked) {
    tuner.claimed(asked, claim.jobs.size());
    claim.full = !claim.jobs.empty() && claim.jobs.size() >= asked;
    if (claim.full && signal_.sleepers() > 0) signal_.wake(1);  // more waits: one more thread
}

JobRunner::Claim JobRunner::run_tracked(Claim& claim, Session& queue_session,
                                        const Runner& runner, ClaimTuner& tuner) {
    slot_.add(Counter::jobs_claimed, claim.jobs.size());
    track(claim.jobs, true);
    Claim next;
    try {
        next = run_claimed(claim.jobs, queue_session, runner, tuner, claim.full);
    } catch (...) {
        track(claim.jobs, false);
        throw;
    }
    // Settled, or given up on (its failure could not be recorded): from now on
    // its lease runs out, and any worker may rescue it.
    track(claim.jobs, false);
    running_.forget(claim.jobs);
    return next;
}

void JobRunner::work_loop(std::size_t index) {
    Session& queue_session = DatabaseManager::instance().session(config_.queue.database);
    const Runner runner{index, Queue::runner_owner(owner_, index),
                        index < ShmWorkerSlot::kMaxRunners ? &slot_.runners[index] : nullptr,
                        &share_of(index)};
    ClaimTuner tuner(runner.share->claim_batch,
                     std::chrono::milliseconds(config_.queue.claim_time_ms));
    ErrorBackoff backoff;
    Claim next;  // claimed with the previous batch's commit
    while (!stopping_) {
        try {
            Claim claim = std::exchange(next, {});
            if (claim.jobs.empty() && !runner.first() && !helpers_wanted_) {
                park_helper();
                continue;
            }
            if (claim.jobs.empty()) claim = claim_own(queue_session, runner, tuner);
            backoff.reset();
            if (!claim.jobs.empty()) next = run_tracked(claim, queue_session, runner, tuner);
            // A claim that came back short found the queue empty: sleep until
            // something new is announced after it.
            if (!claim.full && next.jobs.empty()) signal_.sleep(claim.ticket, kIdleSafety, stopping_);
        } catch (const std::exception& e) {
            // The database is away: say so, and try again less and less often.
            const auto error_pause = backoff.next();
            spdlog::warn("worker thread {} (pid {}): cannot claim jobs ({}); trying again in "
                         "{} ms", index, getpid(), e.what(), error_pause.count());
            pause(error_pause);
        }
    }
    if (!next.jobs.empty()) {  // claimed as the stop came: back to available, no attempt counted
        release(next.jobs, queue_session, runner.owner);
        track(next.jobs, false);
    }
    job_thread_ended();
}

void JobRunner::job_thread_ended() {
    {
        std::lock_guard lock(wake_mutex_);
        --job_threads_running_;
    }
    wake_.notify_all();
    --threads_running_;
}

// Jobs whose task runs on the queue's database share transactions (see
// BatchTransaction). A job on another database, a job tried before (it may be
// what broke, or killed, its last batch: on its own it costs no neighbour an
// attempt), and any job of a batch that could not commit runs on its own with
// run_job(). The last commit also claims the next jobs, which it returns
// (tracked as working, so their leases are renewed). Jobs of tasks known to
// be slow run last, and the jobs behind one go back for other threads.
JobRunner::Claim JobRunner::run_claimed(std::vector<Job>& jobs, Session& queue_session,
                                        const Runner& runner, ClaimTuner& tuner, bool prefetch) {
    const std::int64_t now = queue_.db_now();
    tuner.order(jobs);
    const RunningJobs::Scope running = running_.begin(runner.index, jobs, queue_session);
    BatchTransaction batch(queue_session, runner.share->queue, runner.owner, kBatchWindow,
                           runner.activity);
    std::vector<std::pair<Job, BatchTransaction::Failure>> failures;
    Claim next;
    auto settle = [&](std::size_t claim_next) {
        if (claim_next > 0) next.ticket = signal_.ticket();  // before the claim, as in claim_own()
        BatchTransaction::Flushed flushed = batch.flush(claim_next);
        if (claim_next > 0) {
            next.jobs = std::move(flushed.claimed);
            claimed(tuner, next, claim_next);
            track(next.jobs, true);
        }
        for (const auto& done : flushed.succeeded) {
            on_success(done.job, done.run_ns);
            tuner.ran(done.job.task, done.run_ns);
        }
        for (const Job& job : flushed.redo) run_job(job, queue_session, runner);
        for (const auto& [job, f] : failures)
            on_failure(job, queue_session, runner.owner, f.error, f.permanent, 0);
        failures.clear();
    };
    auto give_back_from = [&](std::size_t first) {
        settle(0);
        release(std::vector<Job>(jobs.begin() + static_cast<std::ptrdiff_t>(first), jobs.end()),
                queue_session, runner.owner);
    };
    bool all_quick = true;  // no job known to last (see helpers_wanted_)
    std::size_t end = jobs.size();
    for (std::size_t i = 0; i < end; ++i) {
        if (stopping_) {
            give_back_from(i);
            return next;
        }
        const Job& job = jobs[i];
        if (running_.cancelled(job.id)) {  // before it started: it never will
            failures.push_back({job, {RunningJobs::kCancelled, true}});
            continue;
        }
        if (i + 1 < end && tuner.slow(job.task)) {  // the rest would wait for it: theirs to take
            give_back_from(i + 1);
            end = i + 1;
        }
        auto waited = std::max<std::int64_t>(0, now - job.run_at_ms);
        slot_.timer(Timer::job_wait).record(static_cast<std::uint64_t>(waited) * 1'000'000ULL);
        const TaskDefinition* task = tasks_.find(job.task);
        nlohmann::json payload = nlohmann::json::parse(job.payload, nullptr, false);
        if (std::string why = unrunnable(job, task, payload, false); !why.empty()) {
            failures.push_back({job, {std::move(why), true}});
            continue;
        }
        if (runner.first() && !gains_nothing_from_helpers(*task, queue_session, tuner)) {
            all_quick = false;  // the first thread judges
            want_helpers();
        }
        if (task->database != config_.queue.database || job.attempts > 1) {
            settle(0);
            const Clock::time_point job_started = Clock::now();
            run_job(job, queue_session, runner);
            tuner.ran(job.task, ns_since(job_started));
        } else if (auto failure = batch.run(job, *task, payload)) {
            failures.push_back({job, *failure});
        }
        if (batch.due() && i + 1 < end) settle(0);
    }
    if (runner.first() && all_quick) helpers_wanted_ = false;
    // After a full claim the next rides on the last commit (a short one found
    // the queue empty; a helper not wanted parks). Not under claim_mutex_: on
    // SQLite this transaction holds the write lock that a thread holding the
    // mutex may be waiting for.
    const bool more = prefetch && !stopping_ && (runner.first() || helpers_wanted_);
    settle(more ? tuner.size() : 0);
    return next;
}

std::string JobRunner::unrunnable(const Job& job, const TaskDefinition* task,
                                  const nlohmann::json& payload, bool coroutines_run) {
    if (!task) return "unknown task '" + job.task + "'";
    if (!task->handler && !coroutines_run)
        return "task '" + job.task + "' is a coroutine: it runs only with [worker] mode = \"async\"";
    if (payload.is_discarded() || !payload.is_object()) return "the payload is not a JSON object";
    return "";
}

void JobRunner::release(const std::vector<Job>& jobs, Session& queue_session,
                        const std::string& owner) {
    try {
        slot_.add(Counter::jobs_released, queue_.release(queue_session, jobs, owner));
    } catch (const std::exception& e) {
        spdlog::warn("worker (pid {}): cannot release {} claimed jobs ({}); housekeeping will",
                     getpid(), jobs.size(), e.what());
        for (const Job& job : jobs)
            leave_unsettled({job, owner, Unsettled::Outcome::give_back});
    }
}

void JobRunner::run_job(const Job& job, Session& queue_session, const Runner& runner) {
    const Clock::time_point started = Clock::now();
    const JobLogScope log_scope(job, started);
    const std::string& owner = runner.owner;
    const TaskDefinition* task = tasks_.find(job.task);
    nlohmann::json payload = nlohmann::json::parse(job.payload, nullptr, false);
    if (std::string why = unrunnable(job, task, payload, false); !why.empty())
        return on_failure(job, queue_session, owner, why, true, 0);
    if (running_.cancelled(job.id))
        return on_failure(job, queue_session, owner, RunningJobs::kCancelled, true, 0);
    Session& session = DatabaseManager::instance().session(task->database);
    const bool same_database = task->database == config_.queue.database;
    running_.use_session(runner.index, session);
    struct BackToQueueSession {  // the batch's own statements run there
        RunningJobs& running;
        std::size_t thread;
        Session& session;
        ~BackToQueueSession() { running.use_session(thread, session); }
    } back{running_, runner.index, queue_session};
    // A transient error (serialization failure, deadlock, busy, lost connection)
    // is retried here, within the job's own timeout, before it costs an attempt.
    std::optional<Clock::time_point> deadline;
    if (task->timeout_ms > 0) deadline = started + std::chrono::milliseconds(task->timeout_ms);
    try {
        bool completed;
        {
            StartedMark mark(runner.activity, job.id);
            completed = retry_.run(
                [&] {
                    if (running_.cancelled(job.id)) throw PermanentJobError(RunningJobs::kCancelled);
                    return try_job(job, *task, payload, session, same_database, deadline, owner);
                },
                deadline, [&](const Error&) { slot_.add(Counter::transactions_retried); });
        }
        if (!completed) {
            spdlog::warn("job {} ({}): its lease was taken back before it completed; its work "
                         "was rolled back", job.id, job.task);
            return;
        }
        // Another database: the task's work is committed first, so a crash in
        // between runs it again (at least once); same database: exactly once.
        if (!same_database) return complete_elsewhere(job, queue_session, owner, started);
        on_success(job, ns_since(started));
    } catch (const PermanentJobError& e) {
        on_failure(job, queue_session, owner, e.what(), true, ns_since(started));
    } catch (const Error& e) {
        if (e.code() == ErrorCode::pool_timeout) {
            // This worker's pool was busy: the job never ran, so it costs no attempt.
            spdlog::warn("job {} ({}): not started, given back: {}", job.id, job.task, e.what());
            return release({job}, queue_session, owner);
        }
        on_failure(job, queue_session, owner, e.what(), false, ns_since(started));
    } catch (const std::exception& e) {
        on_failure(job, queue_session, owner, e.what(), false, ns_since(started));
    }
}

// The task's work committed on its own database; now its completion on the
// queue's. The work is done either way: a completion that cannot be written
// now is left to housekeeping (no attempt charged, the work not run again),
// and one refused because the lease was taken back is not a success.
void JobRunner::complete_elsewhere(const Job& job, Session& queue_session,
                                   const std::string& owner, Clock::time_point started) {
    bool completed = false;
    try {
        completed =
            queue_session.transact([&](Session& s) { return queue_.complete(s, job, owner); });
    } catch (const std::exception& e) {
        spdlog::warn("job {} ({}): its work committed, its completion not yet ({}); "
                     "housekeeping will record it", job.id, job.task, e.what());
        return leave_unsettled({job, owner, Unsettled::Outcome::completed});
    }
    if (!completed) {
        spdlog::warn("job {} ({}): its work committed after its lease was taken back; "
                     "it may run again", job.id, job.task);
        return;
    }
    on_success(job, ns_since(started));
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
                           const std::string& reason, bool permanent, std::uint64_t run_ns) {
    // Cancelled while it ran: whatever it failed with, it is not retried.
    const bool cancelled = running_.cancelled(job.id);
    const std::string error = cancelled && reason != RunningJobs::kCancelled
                                  ? std::string(RunningJobs::kCancelled) + " (" + reason + ")"
                                  : reason;
    permanent = permanent || cancelled;
    try {
        if (auto delay = SnoozeJob::requested_by(error); delay && !cancelled) {
            if (queue_.snooze(queue_session, job, owner, delay->count()))
                slot_.add(Counter::jobs_snoozed);
            return;
        }
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
        spdlog::warn("job {} ({}): cannot record its failure yet ({}); housekeeping will",
                     job.id, job.task, e.what());
        leave_unsettled({job, owner, Unsettled::Outcome::failed, error, permanent});
    }
}

void JobRunner::record(Session& session, const Unsettled& u) {
    switch (u.outcome) {
        case Unsettled::Outcome::give_back:
            slot_.add(Counter::jobs_released, queue_.release(session, {u.job}, u.owner));
            return;
        case Unsettled::Outcome::completed:
            if (session.transact([&](Session& s) { return queue_.complete(s, u.job, u.owner); }))
                slot_.add(Counter::jobs_succeeded);
            return;
        case Unsettled::Outcome::failed:
            switch (queue_.fail(session, u.job, u.owner, u.error, u.permanent)) {
                case Queue::Outcome::retried: slot_.add(Counter::jobs_retried); break;
                case Queue::Outcome::dead: slot_.add(Counter::jobs_dead); break;
                case Queue::Outcome::lost: break;
            }
            return;
    }
}

void JobRunner::leave_unsettled(Unsettled unsettled) {
    std::lock_guard lock(working_mutex_);
    working_.insert(unsettled.job.id);  // its lease is renewed until it is settled
    unsettled_.push_back(std::move(unsettled));
}

void JobRunner::settle_unsettled(Session& session) {
    std::vector<Unsettled> taken;
    {
        std::lock_guard lock(working_mutex_);
        taken.swap(unsettled_);
    }
    for (std::size_t i = 0; i < taken.size(); ++i) {
        const Unsettled& u = taken[i];
        try {
            record(session, u);
            std::lock_guard lock(working_mutex_);
            working_.erase(u.job.id);
        } catch (const std::exception&) {
            std::lock_guard lock(working_mutex_);  // the rest waits for the next round
            unsettled_.insert(unsettled_.end(), taken.begin() + static_cast<std::ptrdiff_t>(i),
                              taken.end());
            throw;
        }
    }
}

void JobRunner::housekeeping_loop() {
    std::unique_ptr<Session> session;
    std::uint64_t epoch_seen = cancel_epoch_.load();
    const auto every = std::chrono::milliseconds(std::max<std::int64_t>(
        100, std::min<std::int64_t>(config_.queue.lease_s * 1000 / 3, 5000)));
    for (;;) {
        const bool draining = stopping_;
        if (draining && job_threads_running_ == 0) {
            // A last try for what the job threads left unsettled as they stopped.
            try {
                if (session) settle_unsettled(*session);
            } catch (const std::exception& e) {
                spdlog::warn("worker (pid {}): outcomes left unrecorded, to lease expiry: {}",
                             getpid(), e.what());
            }
            break;
        }
        try {
            if (!session)
                session = DatabaseManager::instance().dedicated_session(config_.queue.database,
                                                                        "housekeeping");
            housekeep(*session, draining);
        } catch (const std::exception& e) {
            spdlog::warn("worker (pid {}): queue housekeeping failed: {}", getpid(), e.what());
        }
        wait_for_round(every, draining, epoch_seen);
    }
    --threads_running_;
}

void JobRunner::wait_for_round(std::chrono::milliseconds every, bool draining,
                               std::uint64_t& seen) {
    // A cancel request is looked for this often: an atomic read, no query.
    constexpr auto kCancelPoll = std::chrono::milliseconds(50);
    const auto until = Clock::now() + every;
    std::unique_lock lock(wake_mutex_);
    for (auto now = Clock::now(); now < until; now = Clock::now()) {
        const auto slice = std::min<Clock::duration>(kCancelPoll, until - now);
        if (wake_.wait_for(lock, slice, [this, draining] {
                return job_threads_running_ == 0 || (!draining && stopping_);
            }))
            return;
        if (const std::uint64_t epoch = cancel_epoch_.load(); epoch != seen) {
            seen = epoch;
            return;  // a round now: it asks the database which jobs to stop
        }
    }
}

void JobRunner::stop_cancelled(Session& session) {
    for (const std::string& id : running_.cancel(queue_.cancel_requested(session, working_ids())))
        spdlog::info("worker (pid {}): job {} cancelled by operator: stopping it", getpid(), id);
}

void JobRunner::housekeep(Session& session, bool draining) {
    queue_.sync_clock(session);  // an NTP step or drift here is followed within a round
    queue_.renew(session, owner_, working_ids());
    stop_cancelled(session);  // also what a cancel notice missed (another host, poll mode)
    settle_unsettled(session);
    if (draining) return;
    if (std::size_t n = queue_.rescue_expired(session)) {
        slot_.add(Counter::jobs_rescued, n);
        spdlog::warn("worker (pid {}): took back {} job(s) whose lease expired", getpid(), n);
    }
}

}  // namespace dbsup
