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

using Migration = std::vector<std::string> (*)(Backend);
const std::vector<Migration> kMigrations = {migration_1, migration_2};

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
