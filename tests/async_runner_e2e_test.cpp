// The async job runner end to end ([worker] mode = "async"), with the real
// binary (io_worker: dbsupervisor plus coroutine tasks of its own), real
// signals and the real stats file: coroutine and SQL tasks run exactly once
// with many jobs in flight per worker, an operator's cancel stops one in
// flight, a SIGTERM drains every job in flight,
// a SIGKILL charges an attempt to the jobs in flight only, and a PostgreSQL
// restart with 200 jobs in flight loses none and doubles none.
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "config/config_loader.hpp"
#include "shared/db/database_manager.hpp"
#include "shared/queue/queue.hpp"
#include "shared/queue/queue_schema.hpp"
#include "tests/support/backend_test.hpp"
#include "tests/support/operator_cancel.hpp"
#include "tests/support/own_postgres.hpp"
#include "tests/support/supervisor_process.hpp"

namespace dbsup::test {
namespace {

using nlohmann::json;

const std::string kAsync = "[worker]\nmode = \"async\"\n";

// The queue and the tasks' table on a database given as TOML, through the
// test's own sessions; each test starts from empty tables.
class QueueDatabase {
public:
    explicit QueueDatabase(const std::string& toml) : config_(ConfigLoader::load_string(toml, "test")) {
        DatabaseManager::instance().init_worker(config_.databases, "async-e2e");
        Session& s = session();
        s.transact([](Session& t) {
            for (const char* table : {"dbsup_jobs", "dbsup_schema", "dbsup_queues",
                                      "dbsup_schedules", "io_items"})
                t.execute(std::string("DROP TABLE IF EXISTS ") + table);
            t.execute("CREATE TABLE io_items (n BIGINT NOT NULL)");
        });
        QueueSchema::migrate(s);
    }
    ~QueueDatabase() { DatabaseManager::instance().close_worker(); }
    Session& session() { return DatabaseManager::instance().session("main"); }
    Queue queue() const { return Queue::from_config(config_); }

    void enqueue(const std::string& task, int jobs, const std::function<std::string(int)>& payload,
                 std::int64_t max_attempts = 0) {
        std::vector<NewJob> batch;
        for (int i = 0; i < jobs; ++i) batch.push_back({task, payload(i), "", 0, 0, max_attempts, "", 0});
        session().transact([&](Session& t) { queue().enqueue_many(t, batch); });
    }
    std::int64_t scalar(const std::string& sql) {
        return session().transact([&](Session& t) { return t.execute(sql).scalar<std::int64_t>(); });
    }
    /// The ids of the running jobs once there are `n` (fewer after 10 s).
    std::vector<std::string> wait_running(std::size_t n) {
        std::vector<std::string> running;
        for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
             (running = ids("state = 'running'")).size() < n && std::chrono::steady_clock::now() < until;)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return running;
    }
    std::vector<std::string> ids(const std::string& where) {
        return session().transact([&](Session& t) {
            std::vector<std::string> out;
            for (const Row& r : t.execute("SELECT id FROM dbsup_jobs WHERE " + where).rows)
                out.push_back(r.get<std::string>(0));
            return out;
        });
    }

private:
    Config config_;
};

std::string io_payload(int n, int ms) {
    return "{\"n\": " + std::to_string(n) + ", \"ms\": " + std::to_string(ms) + "}";
}

class AsyncRunnerE2E : public BackendTest {};

TEST_P(AsyncRunnerE2E, CoroutineAndSqlTasksRunExactlyOnceWithManyJobsInFlight) {
    if (is_postgres(GetParam())) databases_.drop_queue_tables(GetParam());
    const std::string toml = databases_.toml(GetParam()) +
                             "[tasks.put]\nsql = [\"INSERT INTO io_items (n) VALUES (:n)\"]\n";
    QueueDatabase db(toml);
    db.enqueue("io_insert", 600, [](int i) { return io_payload(i, 20); });
    db.enqueue("put", 600, [](int i) { return "{\"n\": " + std::to_string(1000 + i) + "}"; });
    db.enqueue("noop", 20, [](int) { return "{}"; });  // a sync handler, beside the loop
    TempDir dir;
    SupervisorProcess sup(dir, "", {"--workers", "2"}, {}, kAsync + "max_in_flight = 50\n" + toml,
                          "dbsup", DBSUP_IO_WORKER);
    // The async pools are in the stats once a worker has published them (every 500 ms).
    json done = sup.wait_for(
        [](const json& d) {
            return d["jobs"]["succeeded_total"] >= 1220 && d["pools"].contains("main/async");
        },
        std::chrono::seconds(60));
    EXPECT_TRUE(done["pools"].contains("main/async")) << done["pools"].dump();
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM dbsup_jobs WHERE state = 'succeeded' AND attempts = 1"),
              1220);
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM io_items"), 1200);
    EXPECT_EQ(db.scalar("SELECT COUNT(DISTINCT n) FROM io_items"), 1200);
}

// `jobs cancel` of jobs in flight on the loop: a coroutine waiting on a timer
// and a SQL task whose statement runs on the server stop at once, end
// cancelled without a retry, and the worker goes on with the next job.
TEST_P(AsyncRunnerE2E, AnOperatorCancelStopsJobsInFlightOnTheLoop) {
    const bool pg = is_postgres(GetParam());
    if (pg) databases_.drop_queue_tables(GetParam());
    const std::string slow_sql =
        pg ? "SELECT pg_sleep(30)"
           : "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r LIMIT 10000000000) "
             "SELECT COUNT(*) FROM r";
    const std::string toml = databases_.toml(GetParam()) + "[tasks.slow_sql]\nsql = \"" + slow_sql + "\"\n";
    QueueDatabase db(toml);
    TempDir dir;
    SupervisorProcess sup(dir, "", {"--workers", "1"}, {}, kAsync + toml, "dbsup", DBSUP_IO_WORKER);
    const std::string cfg = "--config " + (dir.path() / "dbsup.toml").string();
    const std::vector<std::pair<std::string, std::string>> cases = {{"io_insert", io_payload(1, 30000)},
                                                                    {"slow_sql", "{}"}};
    for (const auto& [task, payload] : cases) {
        db.enqueue(task, 1, [&](int) { return payload; });
        const std::vector<std::string> running = db.wait_running(1);
        ASSERT_EQ(running.size(), 1u) << task;
        std::this_thread::sleep_for(200ms);  // well into its wait, or its statement
        expect_operator_cancel_stops(
            cfg, running[0], task, [&] { return db.queue().find(db.session(), running[0]); }, 2s);
    }
    if (pg) {
        EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'active' AND "
                            "query LIKE 'SELECT pg_sleep%'"),
                  0) << "the cancelled statement still runs on the server";
    }
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM io_items"), 0) << "a cancelled job's work committed";
    db.enqueue("io_insert", 1, [](int) { return io_payload(7, 1); });
    sup.wait_for([](const json& d) { return d["jobs"]["succeeded_total"] >= 1; }, 10s);
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM io_items WHERE n = 7"), 1);
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

DBSUP_BOTH_BACKENDS(AsyncRunnerE2E);

// 40 jobs of 1.5 s each on one worker: they run at once, and a SIGTERM while
// they run lets every one finish.
TEST(AsyncRunnerSignals, SigtermDrainsEveryJobInFlight) {
    TempDir dir;
    const std::string toml =
        "[databases.main]\nurl = \"sqlite:///" + (dir.path() / "main.db").string() + "\"\n";
    QueueDatabase db(toml);
    db.enqueue("sleep", 40, [](int) { return "{\"ms\": 1500}"; });
    const auto started = std::chrono::steady_clock::now();
    SupervisorProcess sup(dir, "", {"--workers", "1"}, {}, kAsync + "max_in_flight = 40\n" + toml,
                          "dbsup", DBSUP_IO_WORKER);
    EXPECT_EQ(db.wait_running(40).size(), 40u);
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 6s) << "the jobs did not run at once";
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM dbsup_jobs WHERE state = 'succeeded' AND attempts = 1"),
              40);
}

// A worker killed with 10 jobs in flight: those 10 cost an attempt (one of
// them may be what killed it), the 10 it had not claimed none.
TEST(AsyncRunnerSignals, SigkillChargesAnAttemptToTheJobsInFlightOnly) {
    TempDir dir;
    const std::string toml =
        "[databases.main]\nurl = \"sqlite:///" + (dir.path() / "main.db").string() + "\"\n";
    QueueDatabase db(toml);
    db.enqueue("sleep", 20, [](int) { return "{\"ms\": 1000}"; });
    SupervisorProcess sup(dir, "", {"--workers", "1"}, {}, kAsync + "max_in_flight = 10\n" + toml,
                          "dbsup", DBSUP_IO_WORKER);
    json ready = sup.wait_for([](const json& d) {
        return d["workers"].size() == 1 && d["workers"][0]["state"] == "ready";
    });
    const std::vector<std::string> in_flight = db.wait_running(10);
    ASSERT_EQ(in_flight.size(), 10u);
    ::kill(ready["workers"][0]["pid"].get<pid_t>(), SIGKILL);
    sup.wait_for([](const json& d) { return d["jobs"]["succeeded_total"] >= 20; }, 20s);
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM dbsup_jobs WHERE state = 'succeeded'"), 20);
    const std::vector<std::string> charged = db.ids("attempts = 2");
    EXPECT_EQ(std::set<std::string>(charged.begin(), charged.end()),
              std::set<std::string>(in_flight.begin(), in_flight.end()));
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM dbsup_jobs WHERE attempts = 1"), 10);
}

// PostgreSQL stopped and started while 2 workers have 100 jobs in flight
// each: every job ends succeeded with exactly one row, and the breaker that
// opened during the outage is closed again.
TEST(AsyncRunnerResilience, PostgresRestartedWith200JobsInFlightLosesNoneAndDoublesNone) {
    constexpr int kJobs = 1000;
    OwnPostgres pg;
    ::setenv("DBSUP_OWN_PG_PASSWORD", pg.password().c_str(), 1);
    const std::string toml =
        "[databases.main]\nurl = \"" + pg.url() + "\"\npassword_env = \"DBSUP_OWN_PG_PASSWORD\"\n"
        "[queue]\nlease_s = 5\nretry_base_ms = 10\nretry_max_ms = 100\n"
        "[resilience]\ncircuit_breaker = { failure_rate = 0.5, window = 4, open_ms = 300, "
        "half_open_calls = 1 }\n";
    QueueDatabase db(toml);
    db.enqueue("io_insert", kJobs, [](int i) { return io_payload(i, 400); }, 1000);
    TempDir dir;
    SupervisorProcess sup(dir, "", {"--workers", "2"}, {"DBSUP_OWN_PG_PASSWORD=" + pg.password()},
                          kAsync + "max_in_flight = 100\n" + toml, "dbsup", DBSUP_IO_WORKER);
    sup.wait_for([](const json& d) { return d["jobs"]["succeeded_total"] >= 200; }, 30s);
    pg.stop();
    std::this_thread::sleep_for(1s);
    pg.start();
    json done = sup.wait_for(
        [](const json& d) {
            return d["jobs"]["succeeded_total"] >= kJobs && d["circuit_breakers"].contains("main") &&
                   d["circuit_breakers"]["main"]["state"] == "closed";
        },
        120s);
    EXPECT_GE(done["circuit_breakers"]["main"]["opened_total"].get<int>(), 1) << done.dump();
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM dbsup_jobs WHERE state = 'succeeded'"), kJobs);
    EXPECT_EQ(db.scalar("SELECT COUNT(*) FROM io_items"), kJobs);
    EXPECT_EQ(db.scalar("SELECT COUNT(DISTINCT n) FROM io_items"), kJobs);
}

}  // namespace
}  // namespace dbsup::test
