#include "shared/queue/queue_schema.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "shared/errors.hpp"

namespace dbsup {
namespace {

// Times are epoch milliseconds (BIGINT) on both backends, so one set of
// statements serves both and comparisons never depend on a server time zone.
std::string jobs_table(Backend backend, const std::string& name, const std::string& state_check) {
    bool pg = backend == Backend::postgresql;
    return "CREATE TABLE " + name + " (" +
           "id " + (pg ? "uuid" : "TEXT") + " PRIMARY KEY,"
           "queue TEXT NOT NULL,"
           "task TEXT NOT NULL,"
           "payload " + (pg ? "jsonb" : "TEXT") + " NOT NULL,"
           "state TEXT NOT NULL CHECK (" + state_check + "),"
           "priority INTEGER NOT NULL DEFAULT 0,"
           "run_at BIGINT NOT NULL,"
           "attempts INTEGER NOT NULL DEFAULT 0,"
           "max_attempts INTEGER NOT NULL,"
           "locked_by TEXT,"
           "locked_until BIGINT,"
           "last_error TEXT,"
           "created_at BIGINT NOT NULL,"
           "updated_at BIGINT NOT NULL,"
           "finished_at BIGINT)";
}

std::vector<std::string> jobs_indexes() {
    return {
        // The claim query walks this index in order and stops after claim_batch rows.
        "CREATE INDEX dbsup_jobs_claim ON dbsup_jobs (queue, priority, run_at) "
        "WHERE state = 'available'",
        // Every index is paid for by every state change, so there are few: the
        // running set is small (leases, owners), succeeded jobs are pruned by age.
        "CREATE INDEX dbsup_jobs_running ON dbsup_jobs (locked_until) WHERE state = 'running'",
        "CREATE INDEX dbsup_jobs_finished ON dbsup_jobs (finished_at) WHERE state = 'succeeded'",
    };
}

std::vector<std::string> migration_1(Backend backend) {
    std::vector<std::string> sql = {jobs_table(
        backend, "dbsup_jobs", "state IN ('available','running','succeeded','dead')")};
    for (std::string& index : jobs_indexes()) sql.push_back(std::move(index));
    return sql;
}

// SQLite evaluates a CHECK's IN list by building a temporary b-tree, on every
// insert and every state change: a sixth of bulk enqueue's time. The same check
// written with OR costs four comparisons. SQLite cannot alter a CHECK, so the
// table is rebuilt (its documented way). PostgreSQL's IN is cheap: unchanged.
std::vector<std::string> migration_2(Backend backend) {
    if (backend == Backend::postgresql) return {};
    std::vector<std::string> sql = {
        jobs_table(backend, "dbsup_jobs_v2",
                   "state = 'available' OR state = 'running' OR state = 'succeeded' OR "
                   "state = 'dead'"),
        "INSERT INTO dbsup_jobs_v2 SELECT * FROM dbsup_jobs",
        "DROP TABLE dbsup_jobs",
        "ALTER TABLE dbsup_jobs_v2 RENAME TO dbsup_jobs",
    };
    for (std::string& index : jobs_indexes()) sql.push_back(std::move(index));
    return sql;
}

// dbsup_enqueue(): any client enqueues in its own transaction, and the
// NOTIFY that wakes a worker commits with it (README: "Enqueue from SQL").
// The id is a UUIDv7 like the ones the binary makes (time-ordered), built from
// gen_random_uuid() (PostgreSQL 13+). SQLite has no stored functions.
// The body of dbsup_enqueue(); `unique` says whether it takes a unique key
// (version 4 on), which makes the insert yield to the key's holder.
std::string enqueue_function(bool unique) {
    const std::string key_param = unique ? ",\n    unique_key text DEFAULT NULL" : "";
    // PL/pgSQL would read an ON CONFLICT (unique_key) target as the parameter:
    // the key's holder is found when the insert meets the unique index instead.
    const std::string insert_head = unique ? "    BEGIN\n" : "";
    const std::string insert_tail =
        unique ? ";\n"
                 "    EXCEPTION WHEN unique_violation THEN\n"
                 "        SELECT j.id INTO new_id FROM dbsup_jobs j WHERE j.unique_key = unique_key\n"
                 "            AND (j.state = 'available' OR j.state = 'running') LIMIT 1;\n"
                 "        IF new_id IS NOT NULL THEN\n"
                 "            RETURN new_id;\n"
                 "        END IF;\n"
                 "        RAISE;\n"
                 "    END;\n"
               : ";\n";
    const std::string key_column = unique ? ", unique_key" : "";
    const std::string key_value = unique ? ", unique_key" : "";
    return R"SQL(
CREATE OR REPLACE FUNCTION dbsup_enqueue(
    task text, payload jsonb DEFAULT '{}', queue text DEFAULT 'default',
    run_at timestamptz DEFAULT NULL, priority integer DEFAULT 0,
    max_attempts integer DEFAULT 5)SQL" + key_param + R"SQL() RETURNS uuid
LANGUAGE plpgsql AS $fn$
#variable_conflict use_variable
DECLARE
    now_ms bigint := CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS bigint);
    due_ms bigint := COALESCE(CAST(EXTRACT(EPOCH FROM run_at) * 1000 AS bigint), now_ms);
    id_bytes bytea := uuid_send(gen_random_uuid());
    new_id uuid;
BEGIN
    IF task IS NULL OR task !~ '^[A-Za-z_][A-Za-z0-9_-]{0,62}$' THEN
        RAISE EXCEPTION 'dbsup_enqueue: task name "%" is not valid: letters, digits, _ or -, '
            'not starting with a digit or -, at most 63 characters', task
            USING ERRCODE = '22023';
    END IF;
    IF queue IS NULL OR queue !~ '^[A-Za-z_][A-Za-z0-9_-]{0,62}$' THEN
        RAISE EXCEPTION 'dbsup_enqueue: queue name "%" is not valid', queue USING ERRCODE = '22023';
    END IF;
    IF payload IS NULL OR jsonb_typeof(payload) <> 'object' THEN
        RAISE EXCEPTION 'dbsup_enqueue: the payload is not a JSON object' USING ERRCODE = '22023';
    END IF;
    IF max_attempts IS NULL OR max_attempts < 1 THEN
        RAISE EXCEPTION 'dbsup_enqueue: max_attempts must be at least 1' USING ERRCODE = '22023';
    END IF;
    id_bytes := overlay(id_bytes PLACING substring(int8send(now_ms) FROM 3) FROM 1 FOR 6);
    id_bytes := set_byte(id_bytes, 6, (get_byte(id_bytes, 6) & 15) | 112);  -- version 7
    new_id := CAST(encode(id_bytes, 'hex') AS uuid);
)SQL" + insert_head + R"SQL(    INSERT INTO dbsup_jobs (id, queue, task, payload, state, priority, run_at, attempts,
                            max_attempts, created_at, updated_at)SQL" + key_column + R"SQL()
    VALUES (new_id, queue, task, payload, 'available', COALESCE(priority, 0), due_ms, 0,
            max_attempts, now_ms, now_ms)SQL" + key_value + ")" + insert_tail + R"SQL(    PERFORM pg_notify('dbsup_jobs', '1 ' || GREATEST(due_ms - now_ms, 0) || ' ' || queue);
    RETURN new_id;
END
$fn$)SQL";
}

// dbsup_enqueue(): any client enqueues in its own transaction, and the
// NOTIFY that wakes a worker commits with it (README: "Enqueue from SQL").
// The id is a UUIDv7 like the ones the binary makes (time-ordered), built from
// gen_random_uuid() (PostgreSQL 13+). SQLite has no stored functions.
std::vector<std::string> migration_3(Backend backend) {
    if (backend != Backend::postgresql) return {};
    return {enqueue_function(false)};
}

// Unique jobs: a key held by at most one waiting or running job, kept by a
// partial unique index (concurrent enqueuers of one key make one job), and
// dbsup_enqueue() taking one. Existing jobs have none.
std::vector<std::string> migration_4(Backend backend) {
    std::vector<std::string> sql = {
        "ALTER TABLE dbsup_jobs ADD COLUMN unique_key TEXT",
        "CREATE UNIQUE INDEX dbsup_jobs_unique ON dbsup_jobs (unique_key) "
        "WHERE (state = 'available' OR state = 'running')"};
    if (backend == Backend::postgresql) {
        sql.push_back("DROP FUNCTION dbsup_enqueue(text, jsonb, text, timestamptz, integer, integer)");
        sql.push_back(enqueue_function(true));
    }
    return sql;
}

// Paused queues, for every supervisor on the database (jobs pause|resume):
// a claim looks its queue up here by primary key. The dead jobs' index for
// their pruning. And dbsup_snooze(seconds),
// a SQL task's "not yet" (worker/snooze_job.hpp; SQLite connections have it built in).
std::vector<std::string> migration_5(Backend backend) {
    std::vector<std::string> sql = {
        "CREATE TABLE dbsup_queues (name TEXT PRIMARY KEY, paused INTEGER NOT NULL DEFAULT 0, "
        "updated_at BIGINT NOT NULL)",
        // Pruning dead jobs after dead_retention_s walks this, as succeeded ones theirs.
        "CREATE INDEX dbsup_jobs_dead ON dbsup_jobs (finished_at) WHERE state = 'dead'"};
    if (backend == Backend::postgresql)
        sql.push_back(R"SQL(
CREATE OR REPLACE FUNCTION dbsup_snooze(seconds double precision) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    IF seconds IS NULL OR seconds < 0 THEN
        RAISE EXCEPTION 'dbsup_snooze: seconds must be 0 or more' USING ERRCODE = '22023';
    END IF;
    RAISE EXCEPTION 'dbsup_snooze:%', CAST(round(LEAST(seconds, 1e9) * 1000) AS bigint)
        USING HINT = 'the job waits that long; its attempt is not spent';
END
$fn$)SQL");
    return sql;
}

// Schedules: each one's latest firing handled, for every supervisor on the
// database (shared/queue/schedule_ledger.hpp).
std::vector<std::string> migration_6(Backend) {
    return {"CREATE TABLE dbsup_schedules (name TEXT PRIMARY KEY, last_fire_at BIGINT NOT NULL, "
            "updated_at BIGINT NOT NULL)"};
}

// Cancelling a running job: the operator's request, which the job's worker
// acts on; a cancelled job ends dead with it set (`jobs` shows "cancelled").
std::vector<std::string> migration_7(Backend) {
    return {"ALTER TABLE dbsup_jobs ADD COLUMN cancelled_at BIGINT"};
}

using Migration = std::vector<std::string> (*)(Backend);
const std::vector<Migration> kMigrations = {migration_1, migration_2, migration_3, migration_4,
                                           migration_5, migration_6, migration_7};

void lock_schema(Session& session) {
    if (session.backend() == Backend::postgresql)
        session.execute("SELECT pg_advisory_xact_lock(7291845)");  // fixed key: "dbsup schema"
}

std::int64_t version_in_transaction(Session& session) {
    session.execute("CREATE TABLE IF NOT EXISTS dbsup_schema (version INTEGER NOT NULL)");
    Result r = session.execute("SELECT COALESCE(MAX(version), 0) FROM dbsup_schema");
    return r.scalar<std::int64_t>();
}

}  // namespace

std::int64_t QueueSchema::latest_version() noexcept {
    return static_cast<std::int64_t>(kMigrations.size());
}

std::int64_t QueueSchema::migrate(Session& session, std::int64_t up_to) {
    up_to = std::min(up_to, latest_version());
    return session.transact([up_to](Session& s) {
        lock_schema(s);
        std::int64_t version = version_in_transaction(s);
        if (version > latest_version())
            throw Error(ErrorCode::usage,
                        "the queue schema is version " + std::to_string(version) +
                            ", newer than this binary understands (" +
                            std::to_string(latest_version()) + "): upgrade dbsupervisor",
                        s.pool().options().name);
        for (auto v = version; v < up_to; ++v) {
            for (const std::string& sql : kMigrations[static_cast<std::size_t>(v)](s.backend()))
                s.execute(sql);
            s.execute("INSERT INTO dbsup_schema (version) VALUES ($1)", {v + 1});
        }
        return std::max(version, up_to);
    });
}

std::int64_t QueueSchema::current_version(Session& session) {
    return session.transact([](Session& s) {
        const char* sql = s.backend() == Backend::postgresql
                              ? "SELECT to_regclass('dbsup_schema') IS NOT NULL"
                              : "SELECT COUNT(*) FROM sqlite_master WHERE name = 'dbsup_schema'";
        if (!s.execute(sql).scalar<bool>()) return std::int64_t{0};
        return s.execute("SELECT COALESCE(MAX(version), 0) FROM dbsup_schema")
            .scalar<std::int64_t>();
    });
}

}  // namespace dbsup
