#include "worker/async_job_runner.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

#include "shared/clock.hpp"
#include "shared/db/database_manager.hpp"
#include "shared/metrics/started_mark.hpp"
#include "worker/job_runner.hpp"
#include "worker/permanent_job_error.hpp"

namespace dbsup {
namespace {

namespace asio = boost::asio;
using asio::use_awaitable;

// An idle loop sleeps until woken (WakeSignal); this bounds a sleep should
// every wake be missed: not a poll.
constexpr auto kIdleSafety = std::chrono::seconds(30);

// The completion found the job no longer ours: its work is rolled back.
struct LeaseLost {};

}  // namespace

// An operator's cancel of a job on the loop. A statement it runs is
// cancelled on the server, and its failure ends the job: the job is not
// over while the statement may still run. Else its coroutine is cancelled
// wherever it waits.
struct AsyncJobRunner::JobCancel {
    asio::cancellation_signal signal;
    AsyncSession* session = nullptr;  // while the job's transaction is open

    void fire() {
        if (session && session->cancel()) return;
        signal.emit(asio::cancellation_type::terminal);
    }
};

namespace {

// The job's session, for a cancel to reach, while its transaction is open.
struct SessionShown {
    AsyncSession*& shown;
    SessionShown(AsyncSession*& slot, AsyncSession& session) : shown(slot) { shown = &session; }
    ~SessionShown() { shown = nullptr; }
};

}  // namespace

AsyncJobRunner::AsyncJobRunner(JobRunner& runner)
    : runner_(runner),
      max_in_flight_(static_cast<std::size_t>(runner.config_.worker.max_in_flight)),
      job_threads_(static_cast<std::size_t>(runner.config_.worker.threads)),
      completion_bound_(runner.queue_.completion_bound_statement()) {
    for (std::size_t i = max_in_flight_; i > 0; --i) free_entries_.push_back(i - 1);
}

AsyncJobRunner::~AsyncJobRunner() {
    helpers_.join();
    job_threads_.join();
}

bool AsyncJobRunner::stopping() const noexcept { return runner_.stopping_.load(); }

std::string AsyncJobRunner::owner() const { return Queue::runner_owner(runner_.owner_, 0); }

void AsyncJobRunner::run() {
    asio::co_spawn(loop_, claim_loop(), [](std::exception_ptr e) {
        try {
            if (e) std::rethrow_exception(e);
        } catch (const std::exception& x) {
            spdlog::error("worker (pid {}): the async job loop failed: {}", getpid(), x.what());
        }
    });
    loop_.run();
}

void AsyncJobRunner::request_stop() noexcept {
    asio::post(loop_, [this] { room_.cancel(); });
}

void AsyncJobRunner::room_freed() noexcept { room_.cancel(); }

template <class F>
Awaitable<std::invoke_result_t<F>> AsyncJobRunner::on_helper(F f) {
    co_return co_await asio::co_spawn(
        helpers_, [&]() -> Awaitable<std::invoke_result_t<F>> { co_return f(); }, use_awaitable);
}

Awaitable<void> AsyncJobRunner::pause(std::chrono::milliseconds ms) {
    asio::steady_timer timer(loop_, ms);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
}

Awaitable<std::vector<Job>> AsyncJobRunner::claim(std::size_t n) {
    const std::string& database = runner_.config_.queue.database;
    std::chrono::milliseconds error_pause{};
    try {
        std::vector<Job> jobs = co_await on_helper([&] {
            return runner_.queue_.claim(DatabaseManager::instance().session(database), owner(), n);
        });
        claim_backoff_.reset();
        co_return jobs;
    } catch (const std::exception& e) {  // the database is away: try again less and less often
        error_pause = claim_backoff_.next();
        spdlog::warn("worker (pid {}): cannot claim jobs ({}); trying again in {} ms", getpid(),
                     e.what(), error_pause.count());
    }
    co_await pause(error_pause);
    co_return std::vector<Job>{};
}

Awaitable<void> AsyncJobRunner::claim_loop() {
    const auto batch = static_cast<std::size_t>(runner_.config_.queue.claim_batch);
    // Claims wait for room for a quarter of max_in_flight: a claim per job that
    // ends would cost a transaction per job, and claims would compete for the
    // queue's rows with every other worker's.
    const std::size_t refill = std::max<std::size_t>(1, max_in_flight_ / 4);
    while (!stopping()) {
        if (in_flight_ > 0 && max_in_flight_ - in_flight_ < refill) {  // wait for jobs to end
            boost::system::error_code ec;
            co_await room_.async_wait(asio::redirect_error(use_awaitable, ec));
            continue;
        }
        const std::size_t asked = std::min(batch, max_in_flight_ - in_flight_);
        const WakeSignal::Ticket ticket = runner_.signal_.ticket();  // before: no wake is lost
        std::vector<Job> jobs = co_await claim(asked);
        if (jobs.empty()) runner_.slot_.add(Counter::claims_empty);
        runner_.slot_.add(Counter::jobs_claimed, jobs.size());
        runner_.track(jobs, true);
        for (Job& job : jobs) {
            ++in_flight_;
            asio::co_spawn(loop_, run_one(std::move(job)), asio::detached);
        }
        if (jobs.size() >= asked) {  // more may wait: one more sleeper joins in
            if (runner_.signal_.sleepers() > 0) runner_.signal_.wake(1);
            continue;
        }
        // The queue is empty: sleep (off the loop) until something new is announced.
        co_await on_helper([&] { runner_.signal_.sleep(ticket, kIdleSafety, runner_.stopping_); });
    }
    while (in_flight_ > 0) {  // the drain: every job in flight ends
        boost::system::error_code ec;
        co_await room_.async_wait(asio::redirect_error(use_awaitable, ec));
    }
}

Awaitable<void> AsyncJobRunner::run_one(Job job) {
    const std::size_t entry = free_entries_.back();
    free_entries_.pop_back();
    const auto waited = std::max<std::int64_t>(0, runner_.queue_.db_now() - job.run_at_ms);
    runner_.slot_.timer(Timer::job_wait).record(static_cast<std::uint64_t>(waited) * 1'000'000ULL);
    try {
        co_await run_job(job, entry);
    } catch (const std::exception& e) {  // its outcome could not even be left to housekeeping
        spdlog::error("job {} ({}): {}", job.id, job.task, e.what());
    }
    runner_.track({job}, false);
    runner_.running_.forget({job});
    free_entries_.push_back(entry);
    --in_flight_;
    room_freed();
}

Awaitable<void> AsyncJobRunner::run_job(const Job& job, std::size_t entry) {
    const TaskDefinition* task = runner_.tasks_.find(job.task);
    const nlohmann::json payload = nlohmann::json::parse(job.payload, nullptr, false);
    const Clock::time_point started = Clock::now();
    const std::string& database = runner_.config_.queue.database;
    Outcome outcome{Outcome::Kind::permanent, JobRunner::unrunnable(job, task, payload, true)};
    const bool runnable = outcome.error.empty();
    const bool on_loop =
        runnable && task->database == database && (task->async_handler || task->statements);
    if (runnable && runner_.running_.cancelled(job.id))
        outcome.error = RunningJobs::kCancelled;
    else if (on_loop)
        outcome = co_await run_on_loop(job, *task, payload, entry);
    else if (runnable)
        co_return co_await run_sync(job, entry);  // records its own outcome
    const std::uint64_t ns = ns_since(started);
    switch (outcome.kind) {
        case Outcome::Kind::completed: runner_.on_success(job, ns); co_return;
        case Outcome::Kind::lease_lost:
            spdlog::warn("job {} ({}): its lease was taken back before it completed; its work "
                         "was rolled back", job.id, job.task);
            co_return;
        case Outcome::Kind::not_started:
            spdlog::warn("job {} ({}): not started, given back: {}", job.id, job.task, outcome.error);
            co_return co_await on_helper([&] {
                runner_.release({job}, DatabaseManager::instance().session(database), owner());
            });
        case Outcome::Kind::failed:
        case Outcome::Kind::permanent:
            co_return co_await on_helper([&] {
                runner_.on_failure(job, DatabaseManager::instance().session(database), owner(),
                                   outcome.error, outcome.kind == Outcome::Kind::permanent, ns);
            });
    }
}

// Transient errors (serialization failure, deadlock, a lost connection) are
// tried again within the job's timeout before they cost an attempt.
Awaitable<AsyncJobRunner::Outcome> AsyncJobRunner::run_on_loop(const Job& job,
                                                               const TaskDefinition& task,
                                                               const nlohmann::json& payload,
                                                               std::size_t entry) {
    std::optional<Clock::time_point> deadline;
    if (task.timeout_ms > 0) deadline = Clock::now() + std::chrono::milliseconds(task.timeout_ms);
    const StartedMark mark(&runner_.slot_.runners[entry], job.id);
    std::vector<Job> one{job};  // its stop token set by RunningJobs, for the handler to see
    const auto cancel = std::make_shared<JobCancel>();
    const RunningJobs::Scope running = runner_.running_.begin(
        entry, one, [this, cancel] { asio::post(loop_, [cancel] { cancel->fire(); }); });
    for (std::int64_t attempt = 1;; ++attempt) {
        Outcome outcome = co_await asio::co_spawn(
            loop_, try_once(one.front(), task, payload, deadline, *cancel),
            asio::bind_cancellation_slot(cancel->signal.slot(), use_awaitable));
        if (outcome.kind != Outcome::Kind::completed && runner_.running_.cancelled(job.id))
            co_return Outcome{Outcome::Kind::permanent, outcome.error};  // on_failure says why
        if (!outcome.transient || attempt >= runner_.retry_.attempts()) co_return outcome;
        const auto pause_for = runner_.retry_.delay(attempt, random_);
        if (deadline && Clock::now() + pause_for >= *deadline) co_return outcome;
        runner_.slot_.add(Counter::transactions_retried);
        co_await pause(pause_for);
        if (runner_.running_.cancelled(job.id))  // while it paused: no coroutine to cancel then
            co_return Outcome{Outcome::Kind::permanent, RunningJobs::kCancelled};
    }
}

Awaitable<AsyncJobRunner::Outcome> AsyncJobRunner::try_once(
    const Job& job, const TaskDefinition& task, const nlohmann::json& payload,
    std::optional<Clock::time_point> deadline, JobCancel& cancel) {
    try {
        co_await DatabaseManager::instance().async_transact(
            task.database,
            [&](AsyncSession& s) -> Awaitable<void> {
                const SessionShown shown(cancel.session, s);
                std::vector<PendingStatement> work;
                if (task.async_handler)
                    co_await task.async_handler(job, payload, s);
                else
                    work = task.statements(job, payload);
                if (runner_.running_.cancelled(job.id))
                    throw PermanentJobError(RunningJobs::kCancelled);
                // PostgreSQL: the completion fails if the job is no longer ours,
                // so the COMMIT can travel with it (one round trip, not two).
                const bool guarded = s.backend() == Backend::postgresql;
                Queue::Completion done = runner_.queue_.completion(job, owner(), s.backend(),
                                                                   completion_bound_, guarded);
                work.insert(work.end(), done.before.begin(), done.before.end());
                if (guarded) {
                    work.push_back({done.label, done.sql, done.params});
                    co_await s.commit_after(work);
                    co_return;
                }
                Result r = co_await s.execute_after(work, *done.label, done.sql, done.params);
                if (r.affected_rows != 1) throw LeaseLost{};
            },
            deadline);
        co_return Outcome{Outcome::Kind::completed, ""};
    } catch (const LeaseLost&) {
        co_return Outcome{Outcome::Kind::lease_lost, ""};
    } catch (const PermanentJobError& e) {
        co_return Outcome{Outcome::Kind::permanent, e.what()};
    } catch (const Error& e) {
        if (e.code() == ErrorCode::pool_timeout)  // this worker's pool was busy: never ran
            co_return Outcome{Outcome::Kind::not_started, e.what()};
        if (std::string_view(e.what()).find(Queue::kLeaseLost) != std::string_view::npos)
            co_return Outcome{Outcome::Kind::lease_lost, ""};
        co_return Outcome{Outcome::Kind::failed, e.what(), e.is_retryable()};
    } catch (const std::exception& e) {
        co_return Outcome{Outcome::Kind::failed, e.what()};
    }
}

Awaitable<void> AsyncJobRunner::run_sync(const Job& job, std::size_t entry) {
    co_await asio::co_spawn(
        job_threads_,
        [&]() -> Awaitable<void> {
            Session& queue_session =
                DatabaseManager::instance().session(runner_.config_.queue.database);
            std::vector<Job> one{job};
            const RunningJobs::Scope running = runner_.running_.begin(entry, one, queue_session);
            const JobRunner::Runner as{entry, owner(), &runner_.slot_.runners[entry],
                                       &runner_.shares_.front()};
            runner_.run_job(one.front(), queue_session, as);
            co_return;
        },
        use_awaitable);
}

}  // namespace dbsup
