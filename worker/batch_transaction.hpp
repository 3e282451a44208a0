// Several jobs of one claimed batch sharing one transaction on the queue's
// database, so one commit (one fsync) covers many jobs. On SQLite each job's
// task runs inside its own savepoint: a job that fails rolls back to its
// savepoint alone, the others stay. On PostgreSQL, where a savepoint costs two
// round trips, a failing job loses the whole batch instead (see below), and
// SQL tasks' statements are not run one by one but sent together, in one round
// trip, just before the completion. flush() marks every pending job succeeded with one
// guarded UPDATE and commits; if that cannot happen exactly as planned (a
// lease was taken back meanwhile, the commit failed, the connection broke),
// nothing of the batch is kept and its jobs are handed back to be run one by
// one, so no job's work is ever committed without its completion or twice.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "shared/metrics/started_mark.hpp"
#include "shared/queue/queue.hpp"
#include "worker/task_registry.hpp"

namespace dbsup {

class BatchTransaction {
public:
    struct Done {
        Job job;
        std::uint64_t run_ns;
        bool in_pipeline = false;  // its statements wait in pipeline_, unsent
    };
    struct Failure {
        std::string error;
        bool permanent;
    };
    struct Flushed {
        std::vector<Done> succeeded;  // committed
        std::vector<Job> redo;        // rolled back: run these one at a time
        std::vector<Job> claimed;     // the next jobs, claimed in the same commit
    };

    /// window: how long jobs may share one transaction before it is committed.
    /// activity (may be null): where the jobs and statements running are marked
    /// as started, for the supervisor should the worker die meanwhile.
    BatchTransaction(Session& session, const Queue& queue, const std::string& owner,
                     std::chrono::milliseconds window, ShmRunnerActivity* activity = nullptr);
    ~BatchTransaction();
    BatchTransaction(const BatchTransaction&) = delete;
    BatchTransaction& operator=(const BatchTransaction&) = delete;

    /// Runs the job's task in the shared transaction. nullopt: done, pending
    /// the commit; a Failure: rolled back to its savepoint. When the whole
    /// transaction is lost, broken() turns true and the job is kept for redo.
    std::optional<Failure> run(const Job& job, const TaskDefinition& task,
                               const nlohmann::json& payload);
    bool broken() const noexcept { return broken_; }
    /// The window has passed (or the transaction is broken): time to flush().
    bool due() const noexcept;
    /// Commits the pending jobs' completions. With claim_next > 0 it claims up
    /// to that many more jobs in the same transaction: one commit (and on
    /// SQLite one turn at the write lock) instead of two.
    Flushed flush(std::size_t claim_next = 0) noexcept;

private:
    void apply_timeout(const TaskDefinition& task);
    /// PostgreSQL, a SQL task: the job's statements join the pipeline.
    std::optional<Failure> defer(const Job& job, const TaskDefinition& task,
                                 const nlohmann::json& payload);
    /// Sends the pipeline's statements; each deferred job gets a share of the time.
    void send_pipeline();
    bool complete_pending();

    Session& session_;
    const Queue& queue_;
    const std::string& owner_;
    std::chrono::milliseconds window_;
    ShmRunnerActivity* activity_;
    std::chrono::steady_clock::time_point opened_at_{};
    std::string bound_sql_;  // the pipeline's views outlive complete_pending()'s locals
    std::int64_t timeout_ms_ = 0;  // the limit set in this transaction, 0 = none yet
    std::vector<Done> pending_;
    std::vector<PendingStatement> pipeline_;
    bool broken_ = false;
};

}  // namespace dbsup
