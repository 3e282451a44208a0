#include "shared/queue/queue_schema.hpp"

#include <string>
#include <vector>

#include "shared/errors.hpp"

namespace dbsup {
namespace {

// Times are epoch milliseconds (BIGINT) on both backends, so one set of
// statements serves both and comparisons never depend on a server time zone.
std::vector<std::string> migration_1(Backend backend) {
    bool pg = backend == Backend::postgresql;
    return {
        std::string("CREATE TABLE dbsup_jobs (") +
            "id " + (pg ? "uuid" : "TEXT") + " PRIMARY KEY,"
            "queue TEXT NOT NULL,"
            "task TEXT NOT NULL,"
            "payload " + (pg ? "jsonb" : "TEXT") + " NOT NULL,"
            "state TEXT NOT NULL CHECK (state IN ('available','running','succeeded','dead')),"
            "priority INTEGER NOT NULL DEFAULT 0,"
            "run_at BIGINT NOT NULL,"
            "attempts INTEGER NOT NULL DEFAULT 0,"
            "max_attempts INTEGER NOT NULL,"
            "locked_by TEXT,"
            "locked_until BIGINT,"
            "last_error TEXT,"
            "created_at BIGINT NOT NULL,"
            "updated_at BIGINT NOT NULL,"
            "finished_at BIGINT)",
        // The claim query walks this index in order and stops after claim_batch rows.
        "CREATE INDEX dbsup_jobs_claim ON dbsup_jobs (queue, priority, run_at) "
        "WHERE state = 'available'",
        // Every index is paid for by every state change, so there are few: the
        // running set is small (leases, owners), succeeded jobs are pruned by age.
        "CREATE INDEX dbsup_jobs_running ON dbsup_jobs (locked_until) WHERE state = 'running'",
        "CREATE INDEX dbsup_jobs_finished ON dbsup_jobs (finished_at) WHERE state = 'succeeded'",
    };
}

using Migration = std::vector<std::string> (*)(Backend);
const std::vector<Migration> kMigrations = {migration_1};

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

std::int64_t QueueSchema::migrate(Session& session) {
    return session.transact([](Session& s) {
        lock_schema(s);
        std::int64_t version = version_in_transaction(s);
        if (version > latest_version())
            throw Error(ErrorCode::usage,
                        "the queue schema is version " + std::to_string(version) +
                            ", newer than this binary understands (" +
                            std::to_string(latest_version()) + "): upgrade dbsupervisor",
                        s.pool().options().name);
        for (auto v = version; v < latest_version(); ++v) {
            for (const std::string& sql : kMigrations[static_cast<std::size_t>(v)](s.backend()))
                s.execute(sql);
            s.execute("INSERT INTO dbsup_schema (version) VALUES ($1)", {v + 1});
        }
        return latest_version();
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
