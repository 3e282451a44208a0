// The durable job queue on one database (DESIGN section 7). Every state change
// is one guarded UPDATE: it names the job's expected state and owner, so a job
// that another process already completed, released or rescued is never moved
// back by a late writer. Methods that take a Session either run in the
// caller's open transaction (enqueue*, complete) or in a transaction of their
// own (the rest), as each comment says.
//
// Thread-safety: a Queue is immutable after construction but for its clock
// offset (an atomic, see sync_clock); each thread brings its own Session.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "shared/db/session.hpp"
#include "shared/queue/job.hpp"

namespace dbsup {

class Queue {
public:
    /// max_attempts_by_task: each configured task's default for new jobs.
    Queue(QueueConfig config, std::map<std::string, std::int64_t> max_attempts_by_task);
    static Queue from_config(const Config& config);
    /// This queue under another name (what claim() takes from), sharing its
    /// clock offset (sync_clock) and everything else.
    Queue renamed(const std::string& name) const;

    /// Inserts one job in the caller's transaction (autobegun if none is open),
    /// so enqueuing commits or rolls back with the caller's work, and so does
    /// the wake-up of an idle worker for it (see announce()). Returns its id.
    /// @throws Error(usage) when the payload is not a JSON object.
    std::string enqueue(Session& session, const NewJob& job) const;
    /// As enqueue(), for many jobs: Session::bulk_insert (PostgreSQL COPY,
    /// SQLite one cached INSERT stepped per row), 5,000 rows at a time.
    std::vector<std::string> enqueue_many(Session& session, std::span<const NewJob> jobs) const;
    /// As enqueue() for a job with a unique_key: when a job with that key is
    /// waiting or running (or succeeded within unique_for_ms), returns that one
    /// and inserts nothing. Concurrent callers with one key make one job (a
    /// partial unique index decides). enqueue_many() sends such jobs here.
    Enqueued enqueue_unique(Session& session, const NewJob& job) const;

    /// The channel every job made available is announced on (PostgreSQL NOTIFY):
    /// payload "<jobs> <delay_ms> <queue>", at most one per transaction and queue.
    static constexpr const char* kWakeChannel = "dbsup_jobs";
    /// Tells idle workers that `jobs` jobs of `queue` become due in `delay_ms`
    /// (0: now), with the caller's transaction: PostgreSQL NOTIFY (delivered at
    /// commit, never on rollback); SQLite wakes this host's workers after the
    /// commit (WakeSignal::wake_local). Called by every path that makes a job
    /// available; call it too after inserting jobs by other means.
    void announce(Session& session, const std::string& queue, std::size_t jobs,
                  std::int64_t delay_ms) const;

    /// "id is one of the list bound at $placeholder", and that list as one value:
    /// the statement's text (and so its cached prepared statement) is the same
    /// however many ids there are. in_list() is the same for another column
    /// (`pg_type`: its element type on PostgreSQL); id_list() makes the list of
    /// ids or of owner names (a PostgreSQL array literal, or a JSON array).
    static std::string id_in(Backend backend, int placeholder);
    static std::string in_list(Backend backend, const std::string& column, int placeholder,
                               const std::string& pg_type);
    static Value id_list(Backend backend, const std::vector<std::string>& ids);

    /// Claims up to n available jobs whose run_at has come, by priority then
    /// run_at, for `owner`; commits. Counts an attempt for each.
    std::vector<Job> claim(Session& session, const std::string& owner, std::size_t n) const;
    /// As claim(), in the caller's open transaction (which must hold the write
    /// lock on SQLite): the claim commits with the caller's work.
    std::vector<Job> claim_in(Session& session, const std::string& owner, std::size_t n) const;
    /// Marks the job succeeded in the caller's open transaction; false when the
    /// job is no longer this owner's (its lease expired and it was taken back).
    bool complete(Session& session, const Job& job, const std::string& owner) const;

    enum class Outcome { retried, dead, lost };
    /// Records a failed attempt and commits: retried with backoff, or dead when
    /// permanent or out of attempts; lost when the job is no longer this owner's.
    Outcome fail(Session& session, const Job& job, const std::string& owner,
                 const std::string& error, bool permanent) const;
    /// Gives claimed but unstarted jobs back without counting their attempt; commits.
    std::size_t release(Session& session, const std::vector<Job>& jobs,
                        const std::string& owner) const;
    /// What a dead worker had started: the jobs its threads were running, and
    /// the runner owners whose whole batch was running on the server.
    struct StartedClaims {
        std::vector<std::string> job_ids;
        std::vector<std::string> batch_owners;
    };
    struct TakenBack {
        std::size_t charged = 0;   // started: their attempt counts (dead when out of attempts)
        std::size_t released = 0;  // never started: back as if never claimed
    };
    struct DeadWorker {
        std::string owner;  // its owner_id()
        StartedClaims started;
        std::string reason;  // the last_error of the jobs it had started
    };
    /// Takes back every job these workers held (their processes died), in one
    /// transaction (one wait for a locked database, one commit); commits. Only
    /// a started job keeps its attempt, so a job that kills its worker ends
    /// dead, and its batch neighbours do not. One TakenBack per worker, in order.
    /// `wait_limit_ms` > 0 (PostgreSQL): no statement waits longer than that for
    /// a lock or runs longer (Error(timeout)), so a killed worker's backend still
    /// holding the rows cannot hold up the caller; the caller tries again later.
    std::vector<TakenBack> release_workers(Session& session,
                                           const std::vector<DeadWorker>& workers,
                                           std::int64_t wait_limit_ms = 0) const;
    /// PostgreSQL, for the caller's open transaction: lock waits and statements
    /// end with Error(timeout) after `ms`. SQLite's busy timeout bounds it there.
    static void limit_waits(Session& session, std::int64_t ms);
    /// Takes back running jobs whose lease expired; commits. Returns how many.
    std::size_t rescue_expired(Session& session) const;
    /// Extends the leases of these jobs of the worker `worker_owner`, whichever
    /// of its threads claimed them (the ones it is still working on: a job it
    /// gave up on, say because its failure could not be recorded, must expire
    /// and be rescued); commits. Returns how many.
    std::size_t renew(Session& session, const std::string& worker_owner,
                      const std::vector<std::string>& ids) const;
    /// Deletes up to `batch` succeeded jobs older than retention_s; commits.
    /// On PostgreSQL one pruner per database at a time: while another holds
    /// the prune lock this returns 0 at once.
    std::size_t prune(Session& session, std::size_t batch) const;
    /// Per queue with jobs due and waiting: how long the oldest has waited
    /// since it came due (what operators page on).
    std::map<std::string, double> oldest_waiting_seconds(Session& session) const;
    /// PostgreSQL: the jobs table's size on disk (with indexes and TOAST) and
    /// its dead tuples awaiting vacuum; an empty object on SQLite.
    nlohmann::json table_stats(Session& session) const;

    /// Job counts by state (every state present, zero when none); commits.
    std::map<std::string, std::int64_t> counts(Session& session) const;
    /// A running job of `owner` back to waiting, due in delay_ms, its attempt
    /// given back (a handler's "not yet"); commits. False if the job was not
    /// this owner's any more.
    bool snooze(Session& session, const Job& job, const std::string& owner,
                std::int64_t delay_ms) const;
    /// Pauses or resumes `queue` for every supervisor on the database, in the
    /// caller's transaction: a paused queue's jobs are not claimed (running
    /// ones finish). Resuming wakes idle workers. @throws Error(usage) for a bad name.
    void set_paused(Session& session, const std::string& queue, bool paused) const;
    /// The paused queues, by name.
    std::vector<std::string> paused_queues(Session& session) const;
    using StateCounts = std::map<std::string, std::int64_t>;  // the four states always there
    /// Job counts by queue, then by state; commits.
    std::map<std::string, StateCounts> counts_by_queue(Session& session) const;
    /// The sum over queues of counts_by_queue().
    static StateCounts totals(const std::map<std::string, StateCounts>& by_queue);
    /// Job counts by task, then by state; commits.
    std::map<std::string, std::map<std::string, std::int64_t>> counts_by_task(
        Session& session) const;
    /// One job, or nullopt when there is none; commits.
    std::optional<Job> find(Session& session, const std::string& id) const;
    /// Jobs filtered by state, task and queue ("" = any), newest first,
    /// skipping the first `offset`; commits.
    std::vector<Job> list(Session& session, const std::string& state, const std::string& task,
                          std::int64_t limit, const std::string& queue = "",
                          std::int64_t offset = 0) const;
    /// A dead (or available) job back to available with fresh attempts; commits.
    /// False when there is no such job in those states.
    bool retry(Session& session, const std::string& id) const;
    /// Every dead job (of `task`, "" = any) back to available with fresh
    /// attempts; commits. How many.
    std::size_t retry_all_dead(Session& session, const std::string& task = "") const;
    enum class Cancel { cancelled, requested, none };
    /// An available job to dead with "cancelled by operator" (cancelled); a
    /// running one marked for its worker to stop (requested: NOTIFY on
    /// kCancelChannel on PostgreSQL); else none. Commits.
    Cancel cancel(Session& session, const std::string& id) const;
    /// The channel a cancel request for a running job is announced on (payload: its id).
    static constexpr const char* kCancelChannel = "dbsup_cancel";
    /// Which of these jobs an operator asked to cancel; commits.
    std::vector<std::string> cancel_requested(Session& session,
                                              const std::vector<std::string>& ids) const;

    /// How long a job waits after its n-th failed attempt: full jitter over
    /// retry_base_ms * 2^(n-1), capped at retry_max_ms.
    std::int64_t retry_delay_ms(std::int64_t attempts) const;

    /// The lock owner name of a worker: host, supervisor pid, slot, worker pid.
    static std::string owner_id(std::uint64_t supervisor_pid, std::size_t slot,
                                std::uint64_t worker_pid);
    /// The owner name its job-runner thread `thread` claims with ("<worker>/<thread>").
    static std::string runner_owner(const std::string& worker_owner, std::size_t thread);
    /// This host's wall clock, epoch milliseconds.
    static std::int64_t now_ms();
    /// The queue's clock, which every lease, run_at and retention is written
    /// and compared in: this host's wall clock corrected by the last
    /// sync_clock(). On PostgreSQL that is the server's clock, so hosts with
    /// skewed clocks (or one stepped by NTP) agree on when a lease expires.
    std::int64_t db_now() const noexcept;
    /// PostgreSQL: measures this host's clock against the server's (half a
    /// round trip's precision) for db_now(); commits. SQLite: nothing to do.
    /// Copies of this Queue share the result. @throws Error
    void sync_clock(Session& session) const;
    const QueueConfig& config() const noexcept { return config_; }

    /// PostgreSQL, for the caller's open transaction: ends this session if it
    /// sits idle in the transaction longer than a lease (a stopped or hung
    /// worker), so the row locks it holds cannot keep its jobs from being taken
    /// back; and plans every statement for its own parameters and the table as
    /// it is now (force_custom_plan). A cached generic plan made while the table
    /// was empty scans the whole table per statement once it fills up again.
    /// Cost: one statement that travels with BEGIN, and planning (tens of
    /// microseconds a statement, a few statements per batch of jobs).
    /// claim_only: the transaction only claims (see claim()): it need not wait
    /// for its commit to reach the disk.
    void bound_transaction(Session& session, bool claim_only = false) const;
    /// PostgreSQL: the statement bound_transaction() runs, for a caller that
    /// sends it in a pipeline with others.
    std::string bound_statement(bool claim_only = false) const;
    /// PostgreSQL: the bound of a transaction that completes one job by id
    /// (the async runner's): the idle timeout only, plans cached.
    std::string completion_bound_statement() const;

    /// complete() as statements for a caller that sends them itself (the async
    /// runner, with the job's own work, in one round trip): `before` (the
    /// transaction's bounds on PostgreSQL), then the UPDATE, whose
    /// affected_rows is 1 when the job completed. The SQL texts live as long
    /// as this Queue; `before` refers to `bound` (keep it alive).
    struct Completion {
        std::vector<PendingStatement> before;
        const QueryLabel* label;
        std::string_view sql;
        Params params;
    };
    /// guarded (PostgreSQL): the statement fails, with kLeaseLost in its
    /// message, instead of touching no row, so a COMMIT pipelined with it
    /// rolls the work back.
    Completion completion(const Job& job, const std::string& owner, Backend backend,
                          const std::string& bound, bool guarded = false) const;
    static constexpr std::string_view kLeaseLost = "dbsup_lease_lost";

private:
    std::int64_t default_max_attempts(const std::string& task) const;
    static const std::vector<std::string>& insert_columns();
    /// A new job's row in insert_columns() order. @throws Error(usage) for bad names or payload.
    Params insert_row(const NewJob& job, const std::string& id, std::int64_t now) const;
    /// The newest job with job's unique key that succeeded within its unique_for_ms.
    std::optional<std::string> recently_succeeded(Session& session, const NewJob& job,
                                                  std::int64_t now) const;

    QueueConfig config_;
    std::map<std::string, std::int64_t> max_attempts_by_task_;
    std::uint64_t local_wake_key_ = 0;  // WakeSignal::queue_key (SQLite)
    // Server clock minus this host's (ms), shared by copies and threads.
    std::shared_ptr<std::atomic<std::int64_t>> clock_offset_ms_ =
        std::make_shared<std::atomic<std::int64_t>>(0);
};

}  // namespace dbsup
