#include "worker/batch_transaction.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "shared/clock.hpp"
#include "shared/errors.hpp"
#include "worker/permanent_job_error.hpp"
#include "worker/snooze_job.hpp"

namespace dbsup {
namespace {

constexpr std::chrono::milliseconds kNoLimit = std::chrono::hours(24);
const QueryLabel kCompleteBatch{"complete_batch", "dbsup_jobs", "queue"};
const QueryLabel kSavepoint{"savepoint", "-", "queue"};
const QueryLabel kSetConfig{"set_config", "-", "queue"};

}  // namespace

BatchTransaction::BatchTransaction(Session& session, const Queue& queue, const std::string& owner,
                                   std::chrono::milliseconds window,
                                   ShmRunnerActivity* activity)
    : session_(session), queue_(queue), owner_(owner), window_(window), activity_(activity) {}

BatchTransaction::~BatchTransaction() { session_.rollback(); }

bool BatchTransaction::due() const noexcept {
    return broken_ ||
           (!pending_.empty() && std::chrono::steady_clock::now() - opened_at_ >= window_);
}

// SQLite's limit is a deadline, so it is set for each job; PostgreSQL's
// statement_timeout holds for the rest of the transaction, so it is sent only
// when it changes.
void BatchTransaction::apply_timeout(const TaskDefinition& task) {
    if (session_.backend() == Backend::sqlite) {
        session_.connection().limit_transaction_time(
            task.timeout_ms > 0 ? std::chrono::milliseconds(task.timeout_ms) : kNoLimit);
        return;
    }
    if (task.timeout_ms <= 0 || task.timeout_ms == timeout_ms_) return;
    send_pipeline();  // the statements deferred before it run under their own limit
    session_.connection().limit_transaction_time(std::chrono::milliseconds(task.timeout_ms));
    timeout_ms_ = task.timeout_ms;
}

std::optional<BatchTransaction::Failure> BatchTransaction::run(const Job& job,
                                                               const TaskDefinition& task,
                                                               const nlohmann::json& payload) {
    auto started = std::chrono::steady_clock::now();
    try {
        if (!session_.in_transaction()) {
            // Deferred on purpose: a job that writes nothing (sleep, a C++
            // handler waiting on I/O) must not hold SQLite's write lock. A
            // busy database met by a later write redoes the batch (see below).
            session_.begin();
            opened_at_ = started;
            timeout_ms_ = 0;
            started = std::chrono::steady_clock::now();  // a job's time is its own work
        }
        // PostgreSQL pays a round trip per SAVEPOINT and RELEASE, so there a
        // batch runs without them: a failing job rolls the whole batch back and
        // its jobs are run again one at a time. SQLite's savepoints are free.
        if (session_.backend() == Backend::postgresql && task.statements)
            return defer(job, task, payload);
        if (!task.uses_session || session_.backend() == Backend::postgresql) {
            if (task.uses_session) apply_timeout(task);
            StartedMark mark(activity_, job.id);
            task.handler(job, payload, session_);
            pending_.push_back({job, ns_since(started)});
            return std::nullopt;
        }
        apply_timeout(task);
        session_.execute(kSavepoint, "SAVEPOINT dbsup_job");
    } catch (const std::exception&) {
        // The job failed outside a savepoint, or there is no transaction: the
        // batch is lost, and its jobs (this one too) are redone one at a time.
        broken_ = true;
        pending_.push_back({job, 0});
        return std::nullopt;
    }
    std::optional<Failure> failure;
    try {
        {
            StartedMark mark(activity_, job.id);
            task.handler(job, payload, session_);
        }
        session_.execute(kSavepoint, "RELEASE SAVEPOINT dbsup_job");
        pending_.push_back({job, ns_since(started)});
        return std::nullopt;
    } catch (const PermanentJobError& e) {
        failure = Failure{e.what(), true};
    } catch (const Error& e) {
        // Busy, a deadlock, a lost connection: contention, not the job's fault.
        // The batch is redone one job at a time, under the retry policy, and
        // costs no attempt unless that gives up.
        if (e.is_retryable()) {
            broken_ = true;
            pending_.push_back({job, 0});
            return std::nullopt;
        }
        failure = Failure{e.what(), false};
    } catch (const std::exception& e) {
        failure = Failure{e.what(), false};
    }
    try {  // the job's own work goes; the batch's stays
        if (!session_.in_transaction()) throw std::runtime_error("the transaction ended");
        session_.execute(kSavepoint, "ROLLBACK TO SAVEPOINT dbsup_job");
        session_.execute(kSavepoint, "RELEASE SAVEPOINT dbsup_job");
    } catch (const std::exception&) {
        broken_ = true;  // the whole transaction is gone: every job of it is redone
        pending_.push_back({job, 0});
        return std::nullopt;
    }
    return failure;
}

std::optional<BatchTransaction::Failure> BatchTransaction::defer(const Job& job,
                                                                 const TaskDefinition& task,
                                                                 const nlohmann::json& payload) {
    std::vector<PendingStatement> statements;
    try {
        statements = task.statements(job, payload);
    } catch (const PermanentJobError& e) {
        return Failure{e.what(), true};  // nothing of it was sent: the batch is unharmed
    }
    // The limit travels in the pipeline, in order, so the transaction touches
    // the server only when the batch commits: behind a transaction pooler it
    // holds a server connection for that moment alone.
    if (task.timeout_ms > 0 && task.timeout_ms != timeout_ms_) {
        pipeline_.push_back({&kSetConfig, "SELECT set_config('statement_timeout', $1, true)",
                             {std::to_string(task.timeout_ms)}});
        timeout_ms_ = task.timeout_ms;
    }
    for (PendingStatement& st : statements) pipeline_.push_back(std::move(st));
    pending_.push_back({job, 0, true});
    return std::nullopt;
}

void BatchTransaction::send_pipeline() {
    const auto started = std::chrono::steady_clock::now();
    std::vector<PendingStatement> statements = std::move(pipeline_);  // gone even if it fails
    pipeline_.clear();
    if (!statements.empty()) {
        StartedMark mark(activity_);  // every job of the batch may be running now
        session_.execute_all(statements);
    }
    const auto sent = static_cast<std::size_t>(
        std::count_if(pending_.begin(), pending_.end(), [](const Done& d) { return d.in_pipeline; }));
    if (sent == 0) return;
    const std::uint64_t share = ns_since(started) / sent;  // one round trip for all of them
    for (Done& d : pending_) {
        if (!d.in_pipeline) continue;
        d.run_ns = share;
        d.in_pipeline = false;
    }
}

bool BatchTransaction::complete_pending() {
    // From here on the transaction holds the jobs' rows: bound (see
    // Queue::bound_transaction), in the jobs' pipeline when there is one.
    if (!pipeline_.empty()) {
        bound_sql_ = queue_.bound_statement();
        pipeline_.push_back({&kSetConfig, bound_sql_, {}});
        send_pipeline();
    } else {
        queue_.bound_transaction(session_);
    }
    if (session_.backend() == Backend::sqlite)
        session_.connection().limit_transaction_time(kNoLimit);  // no job's deadline applies here
    const Backend backend = session_.backend();
    const std::string sql =
        "UPDATE dbsup_jobs SET state = 'succeeded', locked_by = NULL, locked_until = NULL, "
        "last_error = NULL, finished_at = $2, updated_at = $2 "
        "WHERE state = 'running' AND locked_by = $1 AND " + Queue::id_in(backend, 3);
    std::vector<std::string> ids;
    ids.reserve(pending_.size());
    for (const auto& p : pending_) ids.push_back(p.job.id);
    return session_.execute(kCompleteBatch, sql,
                            {owner_, queue_.db_now(), Queue::id_list(backend, ids)})
               .affected_rows == static_cast<std::int64_t>(pending_.size());
}

BatchTransaction::Flushed BatchTransaction::flush(std::size_t claim_next) noexcept {
    Flushed out;
    std::vector<Job> claimed;
    if (pending_.empty()) {
        session_.rollback();  // only failed jobs' savepoints were in it
        broken_ = false;
        return out;
    }
    bool committed = false;
    if (!broken_) {
        try {
            if (complete_pending()) {
                if (claim_next > 0) claimed = queue_.claim_in(session_, owner_, claim_next);
                session_.commit();
                committed = true;
            } else {
                spdlog::warn("a batch of {} jobs lost a lease before it committed; running them "
                             "one at a time", pending_.size());
            }
        } catch (const std::exception& e) {
            // A job that snoozed (dbsup_snooze) is no trouble: run alone, it waits.
            const auto level = SnoozeJob::requested_by(e.what()) ? spdlog::level::debug
                                                                  : spdlog::level::warn;
            spdlog::log(level,
                        "a batch of {} jobs could not commit ({}); running them one at a time",
                        pending_.size(), e.what());
        }
    }
    session_.rollback();
    if (committed) {
        out.succeeded = std::move(pending_);
        out.claimed = std::move(claimed);
    } else {
        for (Done& d : pending_) out.redo.push_back(std::move(d.job));
    }
    pending_.clear();
    pipeline_.clear();
    broken_ = false;
    return out;
}

}  // namespace dbsup
