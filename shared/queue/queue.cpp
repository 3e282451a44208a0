#include "shared/queue/queue.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <utility>

#include "config/names.hpp"
#include "shared/errors.hpp"
#include "shared/queue/uuid7.hpp"
#include "shared/queue/wake_signal.hpp"

namespace dbsup {
namespace {

constexpr const char* kColumns =
    "id, queue, task, payload, state, priority, run_at, attempts, max_attempts, locked_by, "
    "locked_until, last_error, created_at, finished_at";
constexpr std::size_t kBatchRows = 5000;

// The queue's statements in queries.by_label of the stats file.
const QueryLabel kClaim{"claim", "dbsup_jobs", "queue"};
const QueryLabel kComplete{"complete", "dbsup_jobs", "queue"};
const QueryLabel kFail{"fail", "dbsup_jobs", "queue"};
const QueryLabel kRelease{"release", "dbsup_jobs", "queue"};
const QueryLabel kTakeBack{"take_back", "dbsup_jobs", "queue"};
const QueryLabel kRenew{"renew", "dbsup_jobs", "queue"};
const QueryLabel kPrune{"prune", "dbsup_jobs", "queue"};
const QueryLabel kLockBound{"set_config", "-", "queue"};
const QueryLabel kClockSync{"clock", "-", "queue"};
const QueryLabel kNotify{"notify", "-", "queue"};
const QueryLabel kEnqueue{"enqueue", "dbsup_jobs", "queue"};
const QueryLabel kFindUnique{"find_unique", "dbsup_jobs", "queue"};
// The states in which a job holds its unique key (the partial unique index's WHERE).
// More than any host's idle threads: a resumed queue wakes them all.
constexpr std::size_t kWakeAll = 1024;
constexpr const char* kUniqueWhile = "(state = 'available' OR state = 'running')";
constexpr std::size_t kMaxUniqueKeyBytes = 512;  // an index entry, not a document

// "INSERT INTO dbsup_jobs (columns) VALUES ($1, …, $n)". Built with append():
// GCC 12's -Wrestrict misreads `"$" + to_string(n)` at -O3.
std::string insert_sql(const std::vector<std::string>& columns) {
    std::string names, values;
    for (std::size_t i = 0; i < columns.size(); ++i) {
        names.append(i ? ", " : "").append(columns[i]);
        values.append(i ? ", $" : "$").append(std::to_string(i + 1));
    }
    std::string sql = "INSERT INTO dbsup_jobs (";
    sql.append(names).append(") VALUES (").append(values).append(")");
    return sql;
}

// A few rows go in one prepared INSERT each: for a single job (an application
// enqueuing as it works) that is one round trip, where COPY takes three.
void insert_jobs(Session& session, const std::vector<std::string>& columns,
                 const std::vector<Params>& rows) {
    constexpr std::size_t kCopyFrom = 4;
    if (rows.size() >= kCopyFrom) {
        session.bulk_insert("dbsup_jobs", columns, rows);
        return;
    }
    const std::string sql = insert_sql(columns);
    for (const Params& row : rows) session.execute(kEnqueue, sql, row);
}

Job job_of(const Row& r) {
    Job j;
    j.id = r.get<std::string>(0);
    j.queue = r.get<std::string>(1);
    j.task = r.get<std::string>(2);
    j.payload = r.get<std::string>(3);
    j.state = r.get<std::string>(4);
    j.priority = r.get<std::int64_t>(5);
    j.run_at_ms = r.get<std::int64_t>(6);
    j.attempts = r.get<std::int64_t>(7);
    j.max_attempts = r.get<std::int64_t>(8);
    j.locked_by = r.get_optional<std::string>(9).value_or("");
    j.locked_until_ms = r.get_optional<std::int64_t>(10).value_or(0);
    j.last_error = r.get_optional<std::string>(11).value_or("");
    j.created_at_ms = r.get<std::int64_t>(12);
    j.finished_at_ms = r.get_optional<std::int64_t>(13).value_or(0);
    return j;
}

std::vector<Job> jobs_of(const Result& result) {
    std::vector<Job> jobs;
    jobs.reserve(result.size());
    for (const Row& row : result.rows) jobs.push_back(job_of(row));
    return jobs;
}

// A valid JSON text that starts with '{' is an object. accept() checks the
// syntax without building a document, so a payload is never parsed twice.
const std::string& checked_payload(const std::string& payload, std::int64_t max_bytes) {
    if (static_cast<std::int64_t>(payload.size()) > max_bytes)
        throw Error(ErrorCode::usage, "the payload is " + std::to_string(payload.size()) +
                                          " bytes, more than [queue] max_payload_bytes (" +
                                          std::to_string(max_bytes) + ")");
    auto first = payload.find_first_not_of(" \t\r\n");
    if (first == std::string::npos || payload[first] != '{' || !nlohmann::json::accept(payload))
        throw Error(ErrorCode::usage, "the payload is not a JSON object: " + payload.substr(0, 80));
    return payload;
}

std::string json_string(const std::string& text) { return nlohmann::json(text).dump(); }

// A name as a one-line, quoted, escaped JSON string (bytes that are not UTF-8 replaced).
std::string quoted(const std::string& name) {
    return nlohmann::json(name.substr(0, 80))
        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Task and queue names end up in logs, stats keys and Prometheus labels.
void check_names(const NewJob& job) {
    if (!is_valid_name(job.task))
        throw Error(ErrorCode::usage, "task name " + quoted(job.task) + " is not valid: " +
                                          kNameRule);
    if (!job.queue.empty() && !is_valid_name(job.queue))
        throw Error(ErrorCode::usage, "queue name " + quoted(job.queue) + " is not valid: " +
                                          kNameRule);
}

// What every owner name of a worker's runner threads starts with.
std::string runner_prefix(const std::string& worker_owner) { return worker_owner + "/"; }

std::mt19937_64& jitter_engine() {
    thread_local std::mt19937_64 engine{std::random_device{}() ^
                                        static_cast<std::uint64_t>(getpid())};
    return engine;
}

// PostgreSQL: these settings for the rest of the caller's transaction only
// (SET LOCAL), all in one statement. Values are ours, never user input.
std::string set_local_sql(const std::vector<std::pair<const char*, std::string>>& settings) {
    std::string sql = "SELECT ";
    for (const auto& [name, value] : settings) {
        if (sql.size() > 7) sql += ", ";
        sql += std::string("set_config('") + name + "', '" + value + "', true)";
    }
    return sql;
}

void set_local(Session& session, const std::vector<std::pair<const char*, std::string>>& settings) {
    session.execute(kLockBound, set_local_sql(settings));
}

}  // namespace

void Queue::bound_transaction(Session& session, bool claim_only) const {
    if (session.backend() == Backend::postgresql)
        session.execute(kLockBound, bound_statement(claim_only));
}

std::string Queue::bound_statement(bool claim_only) const {
    // A claim on its own commits without waiting for its WAL flush: a claim
    // lost in a server crash only puts its jobs back as available, which the
    // crash does to every running job's transaction anyway, and any later
    // durable commit (a job's completion) flushes the claim first. Saves a
    // disk flush on every claim and from every idle job's pickup.
    std::vector<std::pair<const char*, std::string>> settings = {
        {"idle_in_transaction_session_timeout", std::to_string(config_.lease_s * 1000)},
        {"plan_cache_mode", "force_custom_plan"}};
    if (claim_only) settings.emplace_back("synchronous_commit", "off");
    return set_local_sql(settings);
}

std::string Queue::completion_bound_statement() const {
    // One job's completion by its primary key: a generic plan is as good as
    // any, and planning every statement afresh was most of the server's time
    // per job in the async runner.
    return set_local_sql({{"idle_in_transaction_session_timeout", std::to_string(config_.lease_s * 1000)}});
}

Queue::Queue(QueueConfig config, std::map<std::string, std::int64_t> max_attempts_by_task)
    : config_(std::move(config)), max_attempts_by_task_(std::move(max_attempts_by_task)) {}

Queue Queue::from_config(const Config& config) {
    std::map<std::string, std::int64_t> attempts;
    for (const auto& [name, task] : config.tasks) attempts[name] = task.max_attempts;
    Queue queue(config.queue, std::move(attempts));
    queue.local_wake_key_ = WakeSignal::queue_key(config);
    return queue;
}

void Queue::announce(Session& session, const std::string& queue, std::size_t jobs,
                     std::int64_t delay_ms) const {
    if (jobs == 0) return;
    delay_ms = std::max<std::int64_t>(0, delay_ms);
    if (session.backend() == Backend::postgresql) {
        session.execute(kNotify, std::string("SELECT pg_notify('") + kWakeChannel + "', $1)",
                        {std::to_string(jobs) + " " + std::to_string(delay_ms) + " " + queue});
        return;
    }
    if (local_wake_key_ == 0) return;
    const auto n = static_cast<std::uint32_t>(std::min<std::size_t>(jobs, UINT32_MAX));
    session.after_commit(
        [key = local_wake_key_, n, delay_ms] { WakeSignal::wake_local(key, n, delay_ms); });
}

std::int64_t Queue::db_now() const noexcept {
    return now_ms() + clock_offset_ms_->load(std::memory_order_relaxed);
}

void Queue::sync_clock(Session& session) const {
    if (session.backend() != Backend::postgresql) return;  // one host: its clock is the queue's
    const std::int64_t before = now_ms();
    const auto server = session.transact([](Session& s) {
        return s.execute(kClockSync,
                         "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")
            .scalar<std::int64_t>();
    });
    const std::int64_t after = now_ms();
    if (after - before > 1000) return;  // a round trip this slow says little about the clocks
    clock_offset_ms_->store(server - (before + after) / 2, std::memory_order_relaxed);
}

std::int64_t Queue::now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string Queue::owner_id(std::uint64_t supervisor_pid, std::size_t slot,
                            std::uint64_t worker_pid) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    return std::string(host) + ":" + std::to_string(supervisor_pid) + ":" +
           std::to_string(slot) + ":" + std::to_string(worker_pid);
}

std::string Queue::runner_owner(const std::string& worker_owner, std::size_t thread) {
    return runner_prefix(worker_owner) + std::to_string(thread);
}

std::int64_t Queue::default_max_attempts(const std::string& task) const {
    auto it = max_attempts_by_task_.find(task);
    return it == max_attempts_by_task_.end() ? 5 : it->second;
}

std::int64_t Queue::retry_delay_ms(std::int64_t attempts) const {
    std::int64_t ceiling = config_.retry_base_ms;
    for (std::int64_t i = 1; i < attempts && ceiling < config_.retry_max_ms; ++i) ceiling *= 2;
    ceiling = std::min(ceiling, config_.retry_max_ms);
    if (ceiling <= 0) return 0;
    return std::uniform_int_distribution<std::int64_t>(0, ceiling)(jitter_engine());
}

Queue Queue::renamed(const std::string& name) const {
    Queue copy = *this;
    copy.config_.name = name;
    return copy;
}

std::string Queue::enqueue(Session& session, const NewJob& job) const {
    return enqueue_many(session, std::span<const NewJob>(&job, 1)).front();
}

const std::vector<std::string>& Queue::insert_columns() {
    static const std::vector<std::string> columns = {
        "id", "queue", "task", "payload", "state", "priority", "run_at", "attempts",
        "max_attempts", "created_at", "updated_at"};
    return columns;
}

Params Queue::insert_row(const NewJob& j, const std::string& id, std::int64_t now) const {
    check_names(j);
    const std::int64_t attempts = j.max_attempts > 0 ? j.max_attempts : default_max_attempts(j.task);
    return {id,
            j.queue.empty() ? config_.name : j.queue,
            j.task,
            checked_payload(j.payload, config_.max_payload_bytes),
            "available",
            j.priority,
            j.run_at_ms > 0 ? j.run_at_ms : now,
            std::int64_t{0},
            attempts,
            now,
            now};
}

// The insert comes first: it takes SQLite's write lock at once (a read first
// could not be upgraded under contention), and on PostgreSQL it waits for a
// concurrent holder of the key to commit or roll back.
Enqueued Queue::enqueue_unique(Session& session, const NewJob& job) const {
    if (job.unique_key.empty()) return {enqueue(session, job), false};
    if (job.unique_key.size() > kMaxUniqueKeyBytes)
        throw Error(ErrorCode::usage, "the unique key is " + std::to_string(job.unique_key.size()) +
                                          " bytes, more than " +
                                          std::to_string(kMaxUniqueKeyBytes));
    const std::int64_t now = db_now();
    static const std::string insert = [] {
        std::vector<std::string> columns = insert_columns();
        columns.push_back("unique_key");
        return insert_sql(columns) + " ON CONFLICT (unique_key) WHERE " + kUniqueWhile +
               " DO NOTHING RETURNING id";
    }();
    Params row = insert_row(job, new_uuid7(), now);
    row.push_back(job.unique_key);
    const std::string& queue = std::get<std::string>(row[1]);
    // A holder that finishes between the insert and the look: try again.
    for (int round = 0; round < 3; ++round) {
        Result inserted = session.execute(kEnqueue, insert, row);
        if (!inserted.rows.empty()) {
            const std::string id = inserted.rows[0].get<std::string>(0);
            if (auto recent = recently_succeeded(session, job, now)) {
                session.execute(kEnqueue, "DELETE FROM dbsup_jobs WHERE id = $1", {id});
                return {*recent, true};
            }
            announce(session, queue, 1, std::max<std::int64_t>(0, std::get<std::int64_t>(row[6]) - now));
            return {id, false};
        }
        Result held = session.execute(kFindUnique,
                                      "SELECT id FROM dbsup_jobs WHERE unique_key = $1 AND " +
                                          std::string(kUniqueWhile) + " LIMIT 1",
                                      {job.unique_key});
        if (!held.rows.empty()) return {held.rows[0].get<std::string>(0), true};
    }
    throw Error(ErrorCode::serialization_failure,
                "unique key " + quoted(job.unique_key) + " kept changing hands; try again");
}

std::optional<std::string> Queue::recently_succeeded(Session& session, const NewJob& job,
                                                     std::int64_t now) const {
    if (job.unique_for_ms <= 0) return std::nullopt;
    Result r = session.execute(kFindUnique,
                               "SELECT id FROM dbsup_jobs WHERE unique_key = $1 AND state = "
                               "'succeeded' AND finished_at >= $2 ORDER BY finished_at DESC LIMIT 1",
                               {job.unique_key, now - job.unique_for_ms});
    if (r.rows.empty()) return std::nullopt;
    return r.rows[0].get<std::string>(0);
}

std::vector<std::string> Queue::enqueue_many(Session& session,
                                             std::span<const NewJob> jobs) const {
    std::vector<std::string> ids;
    ids.reserve(jobs.size());
    const std::int64_t now = db_now();
    // Per queue: jobs due now, and the earliest delay of the others.
    std::map<std::string, std::pair<std::size_t, std::int64_t>> due;
    std::vector<Params> rows;
    for (std::size_t start = 0; start < jobs.size(); start += kBatchRows) {
        rows.clear();
        for (std::size_t i = start; i < std::min(jobs.size(), start + kBatchRows); ++i) {
            const NewJob& j = jobs[i];
            if (!j.unique_key.empty()) {  // one at a time, against the key's holder
                ids.push_back(enqueue_unique(session, j).id);
                continue;
            }
            ids.push_back(new_uuid7());
            rows.push_back(insert_row(j, ids.back(), now));
            const std::string& queue = j.queue.empty() ? config_.name : j.queue;
            auto& [now_due, delay] = due.try_emplace(queue, 0, INT64_MAX).first->second;
            if (j.run_at_ms <= now) ++now_due;
            else delay = std::min(delay, j.run_at_ms - now);
        }
        if (!rows.empty()) insert_jobs(session, insert_columns(), rows);
    }
    for (const auto& [queue, d] : due) {
        announce(session, queue, d.first, 0);
        if (d.second != INT64_MAX) announce(session, queue, 1, d.second);  // the earliest later one
    }
    return ids;
}

std::string Queue::id_in(Backend backend, int placeholder) {
    return in_list(backend, "id", placeholder, "uuid");
}

std::string Queue::in_list(Backend backend, const std::string& column, int placeholder,
                           const std::string& pg_type) {
    const std::string n = std::to_string(placeholder);
    if (backend == Backend::postgresql) return column + " = ANY($" + n + "::" + pg_type + "[])";
    return column + " IN (SELECT value FROM json_each($" + n + "))";
}

Value Queue::id_list(Backend backend, const std::vector<std::string>& ids) {
    const bool pg = backend == Backend::postgresql;
    std::string out = pg ? "{" : "[";
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (i) out += ',';
        out += pg ? backslash_quoted(ids[i], '"') : json_string(ids[i]);
    }
    return out + (pg ? "}" : "]");
}

std::vector<Job> Queue::claim(Session& session, const std::string& owner, std::size_t n) const {
    session.begin(Connection::BeginMode::immediate);  // SQLite: one claimer at a time
    std::vector<Job> jobs;
    try {
        bound_transaction(session, true);
        jobs = claim_in(session, owner, n);
        session.commit();
    } catch (...) {
        session.rollback();
        throw;
    }
    return jobs;
}

std::vector<Job> Queue::claim_in(Session& session, const std::string& owner, std::size_t n) const {
    const std::int64_t now = db_now();
    const bool pg = session.backend() == Backend::postgresql;
    const std::string pick =
        "SELECT id FROM dbsup_jobs WHERE queue = $4 AND state = 'available' AND "
        "run_at <= $3 AND NOT EXISTS (SELECT 1 FROM dbsup_queues WHERE name = $4 AND paused = 1) "
        "ORDER BY priority, run_at LIMIT $5";
    // PostgreSQL: the pick is an ARRAY() sub-select, so it runs once, as an
    // InitPlan, whatever the plan. As `id IN (pick)` a plan made when the table
    // looked empty re-ran the locking pick for every row of the table: minutes
    // for a burst, and more rows claimed than LIMIT allows.
    const std::string which = pg ? "id = ANY(ARRAY(" + pick + " FOR UPDATE SKIP LOCKED))"
                                 : "id IN (" + pick + ")";
    const std::string sql =
        "UPDATE dbsup_jobs SET state = 'running', attempts = attempts + 1, locked_by = $1, "
        "locked_until = $2, updated_at = $3 WHERE " + which + " RETURNING " + kColumns;
    std::vector<Job> jobs = jobs_of(session.execute(
        kClaim, sql,
        {owner, now + config_.lease_s * 1000, now, config_.name, static_cast<std::int64_t>(n)}));
    std::sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) {
        return std::tie(a.priority, a.run_at_ms) < std::tie(b.priority, b.run_at_ms);
    });
    return jobs;
}

namespace {

const std::string kCompleteSql =
    "UPDATE dbsup_jobs SET state = 'succeeded', locked_by = NULL, locked_until = NULL, "
    "last_error = NULL, finished_at = $3, updated_at = $3 "
    "WHERE id = $1 AND state = 'running' AND locked_by = $2";

}  // namespace

bool Queue::complete(Session& session, const Job& job, const std::string& owner) const {
    const std::int64_t now = db_now();
    bound_transaction(session);
    Result r = session.execute(kComplete, kCompleteSql, {job.id, owner, now});
    return r.affected_rows == 1;
}

// The same UPDATE that fails, instead of touching no row, when the job is no
// longer this owner's: its error aborts the transaction, so a COMMIT sent with
// it rolls back. The error's text is built from the count, so the planner
// cannot fold it into an error of every call.
const std::string kGuardedCompleteSql =
    "WITH done AS (" + kCompleteSql + " RETURNING 1) SELECT CASE WHEN COUNT(*) = 1 THEN 1 "
    "ELSE CAST('" + std::string(Queue::kLeaseLost) + "' || COUNT(*) AS INTEGER) END FROM done";

Queue::Completion Queue::completion(const Job& job, const std::string& owner, Backend backend,
                                    const std::string& bound, bool guarded) const {
    Completion c{{}, &kComplete, guarded ? kGuardedCompleteSql : kCompleteSql,
                 {job.id, owner, db_now()}};
    if (backend == Backend::postgresql) c.before.push_back({&kLockBound, bound, {}});
    return c;
}

Queue::Outcome Queue::fail(Session& session, const Job& job, const std::string& owner,
                           const std::string& error, bool permanent) const {
    const bool dead = permanent || job.attempts >= job.max_attempts;
    const std::int64_t now = db_now();
    const std::int64_t run_at = dead ? job.run_at_ms : now + retry_delay_ms(job.attempts);
    Result r = session.transact([&](Session& s) {
        bound_transaction(s);
        Result updated = s.execute(
            kFail,
            "UPDATE dbsup_jobs SET state = $4, run_at = $5, last_error = $6, locked_by = NULL, "
            "locked_until = NULL, updated_at = $3, finished_at = $7 "
            "WHERE id = $1 AND state = 'running' AND locked_by = $2",
            {job.id, owner, now, std::string(dead ? "dead" : "available"), run_at,
             error.substr(0, 2000), dead ? Value(now) : Value(nullptr)});
        if (updated.affected_rows == 1 && !dead) announce(s, job.queue, 1, run_at - now);
        return updated;
    });
    if (r.affected_rows != 1) return Outcome::lost;
    return dead ? Outcome::dead : Outcome::retried;
}

namespace {

// Running jobs matching what follows go back to available as if never claimed:
// their attempt is given back. $1 is the time.
const std::string kPutBack =
    "UPDATE dbsup_jobs SET state = 'available', attempts = attempts - 1, locked_by = NULL, "
    "locked_until = NULL, updated_at = $1 WHERE state = 'running' AND ";

}  // namespace

std::size_t Queue::release(Session& session, const std::vector<Job>& jobs,
                           const std::string& owner) const {
    if (jobs.empty()) return 0;
    std::vector<std::string> ids;
    ids.reserve(jobs.size());
    for (const Job& job : jobs) ids.push_back(job.id);
    const Backend backend = session.backend();
    return session.transact([&](Session& s) {
        bound_transaction(s);
        const auto n = static_cast<std::size_t>(
            s.execute(kRelease, kPutBack + "locked_by = $2 AND " + id_in(backend, 3),
                      {db_now(), owner, id_list(backend, ids)})
                .affected_rows);
        announce(s, config_.name, n, 0);  // another worker may take them now
        return n;
    });
}

namespace {

// On PostgreSQL, housekeeping skips rows another transaction holds (a batch
// completing them right now): waiting for them in an arbitrary order could
// deadlock with that batch, and there is nothing to renew or rescue there.
std::string unlocked_running(Session& session, const std::string& where) {
    if (session.backend() != Backend::postgresql) return "state = 'running' AND " + where;
    return "id IN (SELECT id FROM dbsup_jobs WHERE state = 'running' AND " + where +
           " FOR UPDATE SKIP LOCKED)";
}

// Running jobs matching `where` go back to available, or to dead when they are
// out of attempts (a job that kills its worker every time must stop somewhere),
// in the caller's transaction. $1 is the time, $2 the reason.
std::size_t take_back_in(Session& s, const std::string& where, const Params& params) {
    return static_cast<std::size_t>(
        s.execute(kTakeBack,
                  "UPDATE dbsup_jobs SET "
                  "state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'available' "
                  "END, finished_at = CASE WHEN attempts >= max_attempts THEN CAST($1 AS BIGINT) END, "
                  "last_error = $2, locked_by = NULL, locked_until = NULL, updated_at = $1 "
                  "WHERE " + where,
                  params)
            .affected_rows);
}

// "locked_by names one of this worker's threads" (Queue::runner_owner): $prefix
// is bound to the worker's owner name and a slash, $length to its length.
std::string held_by_worker(int prefix, int length) {
    return "substr(locked_by, 1, $" + std::to_string(length) + ") = $" + std::to_string(prefix);
}

// The values of held_by_worker()'s two parameters.
std::pair<Value, Value> worker_prefix(const std::string& worker_owner) {
    std::string prefix = runner_prefix(worker_owner);
    const auto length = static_cast<std::int64_t>(prefix.size());
    return {std::move(prefix), length};
}

// One dead worker's jobs, in the caller's transaction.
Queue::TakenBack take_back_worker(Session& s, const Queue::DeadWorker& worker, std::int64_t now) {
    const Backend backend = s.backend();
    const auto [prefix, length] = worker_prefix(worker.owner);
    const Queue::StartedClaims& started = worker.started;
    Queue::TakenBack out;
    if (!started.job_ids.empty() || !started.batch_owners.empty())
        out.charged = take_back_in(
            s,
            "state = 'running' AND " + held_by_worker(3, 4) + " AND (" +
                Queue::id_in(backend, 5) + " OR " +
                Queue::in_list(backend, "locked_by", 6, "text") + ")",
            {now, worker.reason, prefix, length, Queue::id_list(backend, started.job_ids),
             Queue::id_list(backend, started.batch_owners)});
    out.released = static_cast<std::size_t>(
        s.execute(kRelease, kPutBack + held_by_worker(2, 3), {now, prefix, length}).affected_rows);
    return out;
}

}  // namespace

void Queue::limit_waits(Session& session, std::int64_t ms) {
    if (ms <= 0 || session.backend() != Backend::postgresql) return;
    const std::string limit = std::to_string(ms);
    set_local(session, {{"lock_timeout", limit}, {"statement_timeout", limit}});
}

std::vector<Queue::TakenBack> Queue::release_workers(Session& session,
                                                     const std::vector<DeadWorker>& workers,
                                                     std::int64_t wait_limit_ms) const {
    const std::int64_t now = db_now();
    // Without a limit this waits for the dead workers' transactions to end
    // (when their server backends notice), and takes their jobs back then.
    return session.transact([&](Session& s) {
        limit_waits(s, wait_limit_ms);
        std::vector<TakenBack> out;
        std::size_t back = 0;
        for (const DeadWorker& w : workers) {
            out.push_back(take_back_worker(s, w, now));
            back += out.back().charged + out.back().released;
        }
        announce(s, config_.name, back, 0);
        return out;
    });
}

std::size_t Queue::rescue_expired(Session& session) const {
    return session.transact([&](Session& s) {
        bound_transaction(s);
        const std::size_t n = take_back_in(
            s, unlocked_running(s, "locked_until < $1"),
            {db_now(), std::string("lease expired: its worker stopped renewing it")});
        announce(s, config_.name, n, 0);
        return n;
    });
}

std::size_t Queue::renew(Session& session, const std::string& worker_owner,
                         const std::vector<std::string>& ids) const {
    if (ids.empty()) return 0;
    const std::int64_t now = db_now();
    const auto [prefix, length] = worker_prefix(worker_owner);
    const Params params{prefix, now + config_.lease_s * 1000, id_list(session.backend(), ids),
                        length};
    const std::string in = held_by_worker(1, 4) + " AND " + id_in(session.backend(), 3);
    return session.transact([&](Session& s) {
        bound_transaction(s);
        return static_cast<std::size_t>(
            s.execute(kRenew, "UPDATE dbsup_jobs SET locked_until = $2 WHERE " +
                                  unlocked_running(s, in), params)
                .affected_rows);
    });
}

// One DELETE per outcome, each bounded and walking its own partial index on
// finished_at: succeeded after retention_s, dead after dead_retention_s.
std::size_t Queue::prune(Session& session, std::size_t batch) const {
    const std::int64_t now = db_now();
    const bool pg = session.backend() == Backend::postgresql;
    return session.transact([&](Session& s) -> std::size_t {
        // Fixed key "dbsup prune": a second pruner on the database skips its turn.
        if (pg && !s.execute("SELECT pg_try_advisory_xact_lock(7291846)").scalar<bool>())
            return 0;
        bound_transaction(s);
        std::size_t deleted = 0;
        for (const auto& [state, retention_s] :
             {std::pair{"succeeded", config_.retention_s}, {"dead", config_.dead_retention_s}}) {
            if (deleted >= batch || (std::string_view(state) == "dead" && retention_s == 0))
                continue;
            deleted += static_cast<std::size_t>(
                s.execute(kPrune,
                          "DELETE FROM dbsup_jobs WHERE id IN (SELECT id FROM dbsup_jobs WHERE "
                          "state = $3 AND finished_at < $1 LIMIT $2)",
                          {now - retention_s * 1000, static_cast<std::int64_t>(batch - deleted),
                           std::string(state)})
                    .affected_rows);
        }
        return deleted;
    });
}

nlohmann::json Queue::table_stats(Session& session) const {
    if (session.backend() != Backend::postgresql) return nlohmann::json::object();
    Result r = session.transact([](Session& s) {
        return s.execute("SELECT pg_total_relation_size('dbsup_jobs'), COALESCE((SELECT n_dead_tup "
                         "FROM pg_stat_user_tables WHERE relid = 'dbsup_jobs'::regclass), 0)");
    });
    return {{"bytes", r[0].get<std::int64_t>(0)}, {"dead_tuples", r[0].get<std::int64_t>(1)}};
}

std::map<std::string, double> Queue::oldest_waiting_seconds(Session& session) const {
    const std::int64_t now = db_now();
    Result r = session.transact([&](Session& s) {
        return s.execute("SELECT queue, MIN(run_at) FROM dbsup_jobs WHERE state = 'available' "
                         "AND run_at <= $1 GROUP BY queue",
                         {now});
    });
    std::map<std::string, double> out;
    for (const Row& row : r.rows)
        out[row.get<std::string>(0)] =
            static_cast<double>(std::max<std::int64_t>(0, now - row.get<std::int64_t>(1))) / 1000.0;
    return out;
}

bool Queue::snooze(Session& session, const Job& job, const std::string& owner,
                   std::int64_t delay_ms) const {
    static const QueryLabel kSnooze{"snooze", "dbsup_jobs", "queue"};
    const std::int64_t now = db_now();
    return session.transact([&](Session& s) {
        bound_transaction(s);
        const bool mine = s.execute(kSnooze,
                                    "UPDATE dbsup_jobs SET state = 'available', attempts = attempts - 1, "
                                    "run_at = $3, locked_by = NULL, locked_until = NULL, updated_at = $4 "
                                    "WHERE id = $1 AND state = 'running' AND locked_by = $2",
                                    {job.id, owner, now + delay_ms, now})
                              .affected_rows == 1;
        if (mine) announce(s, job.queue, 1, delay_ms);
        return mine;
    });
}

void Queue::set_paused(Session& session, const std::string& queue, bool paused) const {
    static const QueryLabel kPause{"pause", "dbsup_queues", "queue"};
    if (!is_valid_name(queue))
        throw Error(ErrorCode::usage, "queue name " + quoted(queue) + " is not valid: " + kNameRule);
    session.execute(kPause,
                    "INSERT INTO dbsup_queues (name, paused, updated_at) VALUES ($1, $2, $3) "
                    "ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, "
                    "updated_at = excluded.updated_at",
                    {queue, std::int64_t{paused ? 1 : 0}, db_now()});
    if (!paused) announce(session, queue, kWakeAll, 0);  // its waiting jobs are claimable again
}

std::vector<std::string> Queue::paused_queues(Session& session) const {
    Result r = session.transact([](Session& s) {
        return s.execute("SELECT name FROM dbsup_queues WHERE paused = 1 ORDER BY name");
    });
    std::vector<std::string> out;
    for (const Row& row : r.rows) out.push_back(row.get<std::string>(0));
    return out;
}

namespace {

Queue::StateCounts no_jobs() { return {{"available", 0}, {"running", 0}, {"succeeded", 0}, {"dead", 0}}; }

}  // namespace

std::map<std::string, Queue::StateCounts> Queue::counts_by_queue(Session& session) const {
    std::map<std::string, StateCounts> out;
    Result r = session.transact([](Session& s) {
        return s.execute("SELECT queue, state, COUNT(*) FROM dbsup_jobs GROUP BY queue, state");
    });
    for (const Row& row : r.rows) {
        auto [it, added] = out.try_emplace(row.get<std::string>(0), no_jobs());
        it->second[row.get<std::string>(1)] = row.get<std::int64_t>(2);
    }
    return out;
}

Queue::StateCounts Queue::totals(const std::map<std::string, StateCounts>& by_queue) {
    StateCounts out = no_jobs();
    for (const auto& [queue, states] : by_queue)
        for (const auto& [state, n] : states) out[state] += n;
    return out;
}

std::map<std::string, std::int64_t> Queue::counts(Session& session) const {
    return totals(counts_by_queue(session));
}

std::map<std::string, std::map<std::string, std::int64_t>> Queue::counts_by_task(
    Session& session) const {
    std::map<std::string, std::map<std::string, std::int64_t>> out;
    Result r = session.transact([](Session& s) {
        return s.execute("SELECT task, state, COUNT(*) FROM dbsup_jobs GROUP BY task, state");
    });
    for (const Row& row : r.rows)
        out[row.get<std::string>(0)][row.get<std::string>(1)] = row.get<std::int64_t>(2);
    return out;
}

namespace {

// For the operator's commands: the columns of job_of() and whether it was cancelled.
const std::string kShownColumns =
    std::string(kColumns) + ", CASE WHEN cancelled_at IS NULL THEN 0 ELSE 1 END";

std::vector<Job> shown_jobs(const Result& result) {
    std::vector<Job> jobs = jobs_of(result);
    for (std::size_t i = 0; i < jobs.size(); ++i)
        jobs[i].cancelled = result.rows[i].get<std::int64_t>(14) == 1;
    return jobs;
}

}  // namespace

std::optional<Job> Queue::find(Session& session, const std::string& id) const {
    Result r = session.transact([&](Session& s) {
        return s.execute("SELECT " + kShownColumns + " FROM dbsup_jobs WHERE id = $1", {id});
    });
    if (r.empty()) return std::nullopt;
    return shown_jobs(r).front();
}

std::vector<Job> Queue::list(Session& session, const std::string& state, const std::string& task,
                             std::int64_t limit, const std::string& queue,
                             std::int64_t offset) const {
    Result r = session.transact([&](Session& s) {
        return s.execute("SELECT " + kShownColumns +
                             " FROM dbsup_jobs WHERE ($1 = '' OR state = $1) AND "
                             "($2 = '' OR task = $2) AND ($4 = '' OR queue = $4) "
                             "ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $5",
                         {state, task, limit, queue, offset});
    });
    return shown_jobs(r);
}

namespace {

// Back to available with fresh attempts, due now: the jobs matching `where`
// ($2 its one parameter). $1 is the time.
std::size_t make_available(Session& s, std::int64_t now, const std::string& where,
                           const Value& param) {
    return static_cast<std::size_t>(
        s.execute("UPDATE dbsup_jobs SET state = 'available', attempts = 0, run_at = $1, "
                  "finished_at = NULL, cancelled_at = NULL, updated_at = $1 WHERE " + where,
                  {now, param})
            .affected_rows);
}

}  // namespace

bool Queue::retry(Session& session, const std::string& id) const {
    return session.transact([&](Session& s) {
        const std::size_t n =
            make_available(s, db_now(), "id = $2 AND state IN ('dead', 'available')", id);
        announce(s, config_.name, n, 0);
        return n == 1;
    });
}

std::size_t Queue::retry_all_dead(Session& session, const std::string& task) const {
    return session.transact([&](Session& s) {
        const std::size_t n =
            make_available(s, db_now(), "state = 'dead' AND ($2 = '' OR task = $2)", task);
        announce(s, config_.name, n, 0);
        return n;
    });
}

Queue::Cancel Queue::cancel(Session& session, const std::string& id) const {
    const std::int64_t now = db_now();
    return session.transact([&](Session& s) {
        if (s.execute("UPDATE dbsup_jobs SET state = 'dead', last_error = "
                      "'cancelled by operator', finished_at = $2, cancelled_at = $2, "
                      "updated_at = $2 WHERE id = $1 AND state = 'available'",
                      {id, now})
                .affected_rows == 1)
            return Cancel::cancelled;
        if (s.execute("UPDATE dbsup_jobs SET cancelled_at = $2 "
                      "WHERE id = $1 AND state = 'running' AND cancelled_at IS NULL",
                      {id, now})
                .affected_rows == 0)
            return Cancel::none;
        if (s.backend() == Backend::postgresql)  // every supervisor on the database hears it
            s.execute(std::string("SELECT pg_notify('") + kCancelChannel + "', $1)", {id});
        return Cancel::requested;
    });
}

std::vector<std::string> Queue::cancel_requested(Session& session,
                                                 const std::vector<std::string>& ids) const {
    std::vector<std::string> out;
    if (ids.empty()) return out;
    Result r = session.transact([&](Session& s) {
        return s.execute("SELECT id FROM dbsup_jobs WHERE " + id_in(s.backend(), 1) +
                             " AND cancelled_at IS NOT NULL",
                         {id_list(s.backend(), ids)});
    });
    for (const Row& row : r.rows) out.push_back(row.get<std::string>(0));
    return out;
}

}  // namespace dbsup
