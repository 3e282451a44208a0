// Behind PgBouncer in transaction pooling mode (the one scripts/test starts,
// a server pool of 5): what a pooled database keeps off the server, how a
// pooler the config does not name is caught, and the supervisor's choices for it.
// The queue's own end-to-end tests run through it too (DBSUP_ALL_BACKENDS).
#include <gtest/gtest.h>

#include <fstream>

#include "config/password_resolver.hpp"
#include "shared/db/engine.hpp"
#include "shared/db/pooler_probe.hpp"
#include "shared/db/result.hpp"
#include "shared/db/session.hpp"
#include "shared/errors.hpp"
#include "shared/queue/queue.hpp"
#include "tests/support/supervisor_process.hpp"
#include "tests/support/test_databases.hpp"

namespace dbsup::test {
namespace {

using namespace std::chrono_literals;

/// The PgBouncer database as a config that does not say it is pooled.
DatabaseConfig unmarked_pgbouncer() {
    DatabaseConfig db = TestDatabases().config(TestBackend::pgbouncer);
    db.pooler = "none";
    db.listen_url.reset();
    return db;
}

Engine engine_for(const DatabaseConfig& db) {
    return Engine(db, PasswordResolver::resolve(db), "pgbouncer-test");
}

std::int64_t select_int(Connection& c, std::int64_t n) {
    return c.execute("SELECT CAST($1 AS INTEGER) + 0", {n}).scalar<std::int64_t>();
}

TEST(PoolerProbe, TellsADirectServerFromATransactionPooler) {
    TestDatabases databases;
    EXPECT_EQ(PoolerProbe::probe(engine_for(databases.config(TestBackend::postgresql))),
              PoolerProbe::Finding::direct);
    EXPECT_EQ(PoolerProbe::probe(engine_for(unmarked_pgbouncer())),
              PoolerProbe::Finding::transaction_pooler);
}

// A statement prepared on one server connection, then run by a transaction
// that PgBouncer gives another (the first one held by a second client): the
// error names the setting, and from then on nothing is prepared by name.
TEST(UnmarkedPooler, ALostPreparedStatementIsReportedNamingTheSettingAndCachingStops) {
    Engine engine = engine_for(unmarked_pgbouncer());
    auto a = engine.connect(100);
    auto b = engine.connect(100);
    bool caught = false;
    for (int attempt = 0; attempt < 10 && !caught; ++attempt) {
        EXPECT_EQ(select_int(*a, attempt), attempt);  // prepared on the server it got
        b->begin();
        b->execute("SELECT pg_backend_pid()", {});  // most likely that same server, held
        a->begin();
        a->execute("SELECT 1", {});  // so a's transaction gets another one
        try {
            select_int(*a, 7);
        } catch (const Error& e) {
            caught = true;
            EXPECT_EQ(e.code(), ErrorCode::stale_statement) << e.what();
            EXPECT_NE(std::string(e.what()).find("set pooler = \"transaction\" in "
                                                 "[databases.main]"),
                      std::string::npos)
                << e.what();
        }
        a->execute("ROLLBACK", {});
        b->execute("ROLLBACK", {});
    }
    ASSERT_TRUE(caught) << "PgBouncer never moved a prepared statement's client to another server";
    (void)a->take_statement_counts();
    a->begin();
    EXPECT_EQ(select_int(*a, 8), 8);  // unnamed now, whatever server it gets
    a->execute("COMMIT", {});
    auto c = engine.connect(100);  // the database's later connections prepare nothing
    for (int i = 0; i < 3; ++i) EXPECT_EQ(select_int(*c, i), i);
    EXPECT_EQ(c->take_statement_counts().misses, 0u);
    EXPECT_EQ(a->take_statement_counts().misses, 0u);
}

// statement_timeout_ms cannot travel as a startup option through PgBouncer:
// it is set with every BEGIN, for that transaction only.
TEST(PooledDatabase, TheStatementTimeoutHoldsPerTransactionAndStaysThere) {
    TestDatabases databases;
    DatabaseConfig db = databases.config(TestBackend::pgbouncer);
    db.statement_timeout_ms = 300;
    Engine engine = engine_for(db);
    auto c = engine.connect(100);
    c->begin();
    EXPECT_EQ(c->execute("SHOW statement_timeout", {}).scalar<std::string>(), "300ms");
    try {
        c->execute("SELECT pg_sleep(5)", {});
        ADD_FAILURE() << "pg_sleep(5) outlived a 300 ms statement timeout";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::timeout) << e.what();
    }
    c->execute("ROLLBACK", {});
    // The server connection went back to the pool without the setting.
    DatabaseConfig plain = databases.config(TestBackend::pgbouncer);
    auto other = engine_for(plain).connect(100);
    other->begin();
    EXPECT_EQ(other->execute("SHOW statement_timeout", {}).scalar<std::string>(), "0");
    other->execute("COMMIT", {});
}

TEST(PooledDatabase, RunRefusesATransactionPoolerTheConfigDoesNotName) {
    TempDir dir;
    std::ofstream(dir.path() / "c.toml")
        << "[databases.main]\nurl = \"" << unmarked_pgbouncer().url.redacted()
        << "\"\npassword_env = \"DBSUP_TEST_PG_PASSWORD\"\n";
    CommandRun r = run_command("--config " + (dir.path() / "c.toml").string() +
                               " --workers 1 --stats-file " + (dir.path() / "s.json").string());
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("databases.main.pooler: database 'main' is reached through a "
                            "transaction pooler"),
              std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find(TestDatabases::required_env("DBSUP_TEST_PG_PASSWORD")),
              std::string::npos);
}

// No listen_url: LISTEN cannot work through the pooler, so the workers poll,
// and the stats say why.
TEST(PooledDatabase, WithoutListenUrlTheWorkersPollAndTheStatsSayWhy) {
    TestDatabases databases;
    DatabaseConfig db = databases.config(TestBackend::pgbouncer);
    databases.drop_queue_tables(TestBackend::pgbouncer);
    TempDir dir;
    SupervisorProcess sup(dir, "", {"--workers", "1"}, {},
                          "[databases.main]\nurl = \"" + db.url.redacted() +
                              "\"\npassword_env = \"DBSUP_TEST_PG_PASSWORD\"\n"
                              "pooler = \"transaction\"\n[queue]\npoll_interval_ms = 20\n");
    nlohmann::json doc = sup.wait_for([](const nlohmann::json& d) {
        return d["supervisor"]["workers_alive"] == 1;
    });
    EXPECT_EQ(doc["wake"]["mode"], "poll: pooled, no listen_url") << doc["wake"].dump();
    Session session(databases.pool(TestBackend::pgbouncer, PoolOptions{}), "enqueue");
    NewJob job;
    job.task = "noop";
    session.transact([&](Session& s) { Queue(QueueConfig{}, {}).enqueue(s, job); });
    doc = sup.wait_for([](const nlohmann::json& d) { return d["jobs"]["succeeded_total"] == 1; });
    EXPECT_EQ(doc["jobs"]["succeeded_total"], 1);
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

}  // namespace
}  // namespace dbsup::test
