// The queue end to end: the real supervisor and its workers running jobs from a
// real database, killed, drained and stopped with real signals.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <random>

#include "config/config_loader.hpp"
#include "shared/queue/queue.hpp"
#include "shared/queue/queue_schema.hpp"
#include "tests/support/backend_test.hpp"
#include "tests/support/operator_cancel.hpp"
#include "tests/support/supervisor_process.hpp"

namespace dbsup::test {
namespace {

using nlohmann::json;

class QueueE2ETest : public BackendTest {
protected:
    void SetUp() override {
        databases_.drop_queue_tables(GetParam());
        session_ = std::make_unique<Session>(make_pool(2, 0), "queue-e2e");
        session_->transact([](Session& s) {
            s.execute("DROP TABLE IF EXISTS e2e_events");
            s.execute("CREATE TABLE e2e_events (job_id TEXT PRIMARY KEY, kind TEXT NOT NULL)");
        });
        QueueSchema::migrate(*session_);
    }

    /// Databases, queue and tasks sections; `extra` is appended.
    std::string config(const std::string& queue_toml, const std::string& extra = "") const {
        return databases_.toml(GetParam()) +
               "[queue]\npoll_interval_ms = 10\nretry_base_ms = 10\nretry_max_ms = 50\n" +
               queue_toml +
               "\n[tasks.record_event]\nsql = \"INSERT INTO e2e_events (job_id, kind) "
               "VALUES (:job_id, :kind)\"\nmax_attempts = 100\n" + extra;
    }

    /// For reading the queue. Jobs enqueued through it get the built-in
    /// defaults (5 attempts), never a config's task settings: enqueue() does.
    Queue queue() const { return Queue(QueueConfig{}, {}); }

    /// Enqueues as `dbsupervisor enqueue` would with `config_toml` (by default
    /// config("")): a task's max_attempts is given to its jobs when enqueued.
    void enqueue(const std::string& task, const std::string& payload, int n,
                 const std::string& config_toml = "") {
        Queue q = Queue::from_config(
            ConfigLoader::load_string(config_toml.empty() ? config("") : config_toml, "test"));
        std::vector<NewJob> jobs(static_cast<std::size_t>(n));
        for (NewJob& j : jobs) {
            j.task = task;
            j.payload = payload;
        }
        session_->transact([&](Session& s) { q.enqueue_many(s, jobs); });
    }

    std::map<std::string, std::int64_t> counts() { return queue().counts(*session_); }

    std::int64_t scalar(const std::string& sql) {
        return session_->transact([&](Session& s) { return s.execute(sql).scalar<std::int64_t>(); });
    }

    /// Polls the job counts until `ok` holds or `limit` passes; the last counts.
    std::map<std::string, std::int64_t> wait_for_counts(
        const std::function<bool(std::map<std::string, std::int64_t>&)>& ok,
        std::chrono::milliseconds limit) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        auto c = counts();
        while (!ok(c) && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(50ms);
            c = counts();
        }
        return c;
    }

    /// Polls until `n` jobs are running (or 20 s pass); those jobs.
    std::vector<Job> wait_for_running(std::size_t n) {
        std::vector<Job> running;
        auto deadline = std::chrono::steady_clock::now() + 20s;
        while (running.size() < n && std::chrono::steady_clock::now() < deadline) {
            running = queue().list(*session_, "running", "", static_cast<std::int64_t>(n));
            if (running.size() < n) std::this_thread::sleep_for(20ms);
        }
        return running;
    }

    /// The one job enqueued succeeds in its first attempt and `sup` (stopped
    /// here) took nothing back: no lease was lost while it ran.
    void expect_ran_once_in_one_attempt(SupervisorProcess& sup, const char* why) {
        auto c = wait_for_counts([](auto& n) { return n["succeeded"] == 1; }, 20s);
        EXPECT_EQ(c["succeeded"], 1) << describe(c);
        EXPECT_EQ(queue().list(*session_, "succeeded", "", 1).at(0).attempts, 1) << why;
        sup.signal(SIGTERM);
        EXPECT_EQ(sup.wait_exit(), 0);
        EXPECT_EQ(sup.stats()["jobs"]["rescued_total"].get<int>(), 0);
    }

    /// The pid of the worker holding a running job (locked_by ends ":<pid>/<thread>").
    static pid_t worker_pid(const Job& job) {
        return std::stoi(job.locked_by.substr(job.locked_by.rfind(':') + 1));
    }

    static std::string describe(const std::map<std::string, std::int64_t>& c) {
        return json(c).dump();
    }

    /// The 7 quick jobs claimed behind the poison run `neighbour_task` with
    /// `neighbour_payload`, and each ends with `neighbour_attempts`.
    void expect_poison_dead_alone(const std::string& task, const std::string& payload,
                                  const std::string& tasks_toml,
                                  const std::string& neighbour_task = "sleep",
                                  const std::string& neighbour_payload = R"({"ms": 50})",
                                  int neighbour_attempts = 1);

    std::unique_ptr<Session> session_;
};

// A fresh queue on the shared PostgreSQL, for the tests of one backend only.
struct PostgresQueue {
    PostgresQueue() {
        databases.drop_queue_tables(TestBackend::postgresql);
        QueueSchema::migrate(session);
    }
    /// A `sleep` job of `ms`, due at `run_at_ms` (0: now).
    void enqueue_sleep(std::int64_t ms, std::int64_t run_at_ms = 0) {
        NewJob job;
        job.task = "sleep";
        job.payload = "{\"ms\": " + std::to_string(ms) + "}";
        job.run_at_ms = run_at_ms;
        session.transact([&](Session& s) { queue.enqueue(s, job); });
    }
    /// Polls the counts until `state` has `n` jobs or `limit` passes; how many it has.
    std::int64_t wait_for(const std::string& state, std::int64_t n, std::chrono::seconds limit) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (queue.counts(session)[state] < n && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(20ms);
        return queue.counts(session)[state];
    }

    TestDatabases databases;
    std::shared_ptr<ConnectionPool> pool = databases.pool(TestBackend::postgresql, PoolOptions{});
    Session session{pool, "postgres-queue"};
    Queue queue{QueueConfig{}, {}};
};

TEST_P(QueueE2ETest, ASqlTaskCommitsItsRowWithTheJob) {
    TempDir dir;
    enqueue("record_event", R"({"kind": "signup"})", 300);
    SupervisorProcess sup(dir, "", {"--workers", "2"}, {}, config(""));
    auto c = wait_for_counts([](auto& n) { return n["succeeded"] == 300; }, 30s);
    EXPECT_EQ(c["succeeded"], 300) << describe(c);
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
    EXPECT_EQ(scalar("SELECT COUNT(*) FROM e2e_events WHERE kind = 'signup'"), 300);
    json stats = sup.stats();
    EXPECT_EQ(stats["jobs"]["succeeded_total"], 300) << stats.dump();
    EXPECT_EQ(stats["jobs"]["by_task"]["record_event"]["succeeded_total"], 300);
    EXPECT_EQ(stats["queue"]["succeeded"], 300);
    const json& pool = stats["pools"]["main"];
    EXPECT_GT(pool["checkouts_total"].get<int>(), 0) << stats["pools"].dump();
    EXPECT_GE(pool["opened_total"].get<int>(), 2);
    EXPECT_EQ(pool["wait_seconds"]["count"], pool["checkouts_total"]);
    EXPECT_EQ(pool["in_use"], 0) << "the workers are gone; their gauges with them";
    // Every statement the runner issued is tracked under its label.
    const json& q = stats["queries"];
    EXPECT_EQ(q["by_label"]["task:record_event:main"]["total"], 300) << q.dump();
    EXPECT_GT(q["by_label"]["claim:dbsup_jobs:queue"]["total"].get<int>(), 0) << q.dump();
    EXPECT_EQ(q["total"], q["seconds"]["count"]);
    EXPECT_EQ(q["errors_total"], 0) << q.dump();
    EXPECT_GT(stats["transactions"]["committed_total"].get<int>(), 0) << stats.dump();
    const json& cache = stats["statement_cache"];
    if (GetParam() == TestBackend::pgbouncer) {
        // Nothing is prepared by name behind a transaction pooler.
        EXPECT_EQ(cache["hits_total"], 0) << cache.dump();
        EXPECT_EQ(cache["misses_total"], 0) << cache.dump();
        return;
    }
    // The runner's statements are prepared once per connection and reused.
    // Misses: one per statement per connection (more of both under sanitizers).
    EXPECT_GT(cache["hits_total"].get<int>(), 300) << cache.dump();
    EXPECT_GT(cache["hits_total"].get<int>(), 4 * cache["misses_total"].get<int>())
        << cache.dump();
    EXPECT_EQ(cache["hits_total"], pool["statement_cache_hits_total"]);
}

TEST_P(QueueE2ETest, PermanentErrorsGoToDeadAtOnceWithTheReason) {
    TempDir dir;
    enqueue("noop", "{}", 1);
    session_->transact([](Session& s) {  // a payload that is not an object, by plain SQL
        s.execute("UPDATE dbsup_jobs SET payload = '[1, 2]' WHERE task = 'noop'");
    });
    enqueue("record_event", R"({"not_kind": 1})", 1);
    enqueue("record_event", R"({"kind": "x'); DROP TABLE e2e_events; --"})", 1);
    enqueue("no_such_task", "{}", 1);
    enqueue("sleep", R"({"ms": 86400000})", 1);  // a day: beyond the built-in's bound
    SupervisorProcess sup(dir, "", {"--workers", "1"}, {}, config(""));
    auto c = wait_for_counts([](auto& n) { return n["dead"] == 4 && n["succeeded"] == 1; }, 20s);
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
    EXPECT_EQ(c["dead"], 4) << describe(c);
    std::vector<Job> dead = queue().list(*session_, "dead", "", 10);
    std::string errors;
    for (const Job& j : dead) {
        errors += j.last_error + "\n";
        EXPECT_EQ(j.attempts, 1) << j.last_error;
    }
    EXPECT_NE(errors.find("unknown task 'no_such_task'"), std::string::npos) << errors;
    EXPECT_NE(errors.find("the payload is not a JSON object"), std::string::npos) << errors;
    EXPECT_NE(errors.find("the payload has no 'kind'"), std::string::npos) << errors;
    EXPECT_NE(errors.find("sleep: ms must be from 0 to 3600000"), std::string::npos) << errors;
    // The injection attempt was bound as data: the table is there with that row.
    EXPECT_EQ(scalar("SELECT COUNT(*) FROM e2e_events WHERE kind LIKE 'x''); DROP%'"), 1);
}

TEST_P(QueueE2ETest, AFailingTaskIsRetriedThenDeadWithItsLastError) {
    TempDir dir;
    std::string toml = config("", "[tasks.broken]\nsql = \"INSERT INTO no_such_table "
                                  "VALUES (1)\"\nmax_attempts = 3\n");
    enqueue("broken", "{}", 2, toml);
    SupervisorProcess sup(dir, "", {"--workers", "1"}, {}, toml);
    auto c = wait_for_counts([](auto& n) { return n["dead"] == 2; }, 20s);
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
    EXPECT_EQ(c["dead"], 2) << describe(c);
    for (const Job& j : queue().list(*session_, "dead", "broken", 10)) {
        EXPECT_EQ(j.attempts, 3);
        EXPECT_NE(j.last_error.find("no_such_table"), std::string::npos) << j.last_error;
    }
    json stats = sup.stats();
    EXPECT_EQ(stats["jobs"]["retried_total"], 4) << stats.dump();
    EXPECT_EQ(stats["jobs"]["dead_total"], 2);
}

TEST_P(QueueE2ETest, ATaskTimeoutCancelsASlowStatement) {
    TempDir dir;
    std::string slow = is_postgres(GetParam())
                           ? "SELECT pg_sleep(20)"
                           : "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                             "WHERE x < 2000000000) SELECT COUNT(*) FROM c";
    enqueue("slow", "{}", 1);
    SupervisorProcess sup(dir, "", {"--workers", "1"}, {},
                          config("", "[tasks.slow]\nsql = \"" + slow +
                                         "\"\nmax_attempts = 1\ntimeout_ms = 300\n"));
    auto start = std::chrono::steady_clock::now();
    auto c = wait_for_counts([](auto& n) { return n["dead"] == 1; }, 15s);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
    ASSERT_EQ(c["dead"], 1) << describe(c);
    std::string error = queue().list(*session_, "dead", "slow", 1).at(0).last_error;
    EXPECT_NE(error.find("cancel"), std::string::npos) << error;
}

// Under ThreadSanitizer every process runs several times slower and a worker
// takes about a second to start: killing one every 200 ms there leaves the
// workers mostly starting (16,000 of 20,000 jobs in 150 s), and the race
// detector needs the kills, not their rate.
#if defined(__SANITIZE_THREAD__)
constexpr auto kKillEvery = 1000ms;
#else
constexpr auto kKillEvery = 200ms;
#endif

// 20,000 jobs, 8 workers, one worker SIGKILLed every 200 ms: every job ends
// succeeded and its row exists exactly once.
TEST_P(QueueE2ETest, ChaosKillingWorkersLosesAndDuplicatesNothing) {
    TempDir dir;
    constexpr int kJobs = 20'000;
    std::vector<NewJob> jobs(kJobs);
    for (int i = 0; i < kJobs; ++i) {
        // Both backends run a plain insert too fast for many kills to land
        // (PostgreSQL sends a whole batch's statements in one round trip), so
        // each job also counts to 3000.
        jobs[static_cast<std::size_t>(i)].task = "record_event_slowly";
        jobs[static_cast<std::size_t>(i)].payload = "{\"kind\": \"k" + std::to_string(i) + "\"}";
        // A killed worker's started jobs cost an attempt each (a job that kills
        // its worker must stop somewhere), and on PostgreSQL a whole batch on the
        // server counts as started: a job here may be charged by several of the
        // ~100 victims, so it gets room for that.
        jobs[static_cast<std::size_t>(i)].max_attempts = 100;
    }
    session_->transact([&](Session& s) { queue().enqueue_many(s, jobs); });
    SupervisorProcess sup(
        dir, "restart_backoff_ms = [10, 200]", {"--workers", "8"}, {},
        config("claim_batch = 16\nlease_s = 5\n",
               "[tasks.record_event_slowly]\nsql = [\"INSERT INTO e2e_events "
               "(job_id, kind) VALUES (:job_id, :kind)\", \"WITH RECURSIVE c(x) AS (SELECT 1 "
               "UNION ALL SELECT x + 1 FROM c WHERE x < 3000) SELECT COUNT(*) FROM c\"]\n"));
    std::mt19937 random(std::random_device{}());
    int kills = 0;
    auto deadline = std::chrono::steady_clock::now() + 150s;
    auto running = [&] {  // stops at once when a job is dead: that is already a failure
        auto c = counts();
        return c["succeeded"] < kJobs && c["dead"] == 0;
    };
    while (running() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(kKillEvery);
        json doc = sup.stats();
        if (doc.is_null() || doc.is_discarded() || doc["workers"].empty()) continue;
        const json& w = doc["workers"][random() % doc["workers"].size()];
        if (::kill(w["pid"].get<pid_t>(), SIGKILL) == 0) ++kills;
    }
    auto c = counts();
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(30s), 0);
    EXPECT_EQ(c["succeeded"], kJobs) << describe(c) << " after " << kills << " kills; "
                                     << scalar("SELECT MAX(attempts) FROM dbsup_jobs")
                                     << " attempts at most";
    EXPECT_GT(kills, 10);
    EXPECT_EQ(scalar("SELECT COUNT(*) FROM e2e_events"), kJobs);
    EXPECT_EQ(scalar("SELECT COUNT(DISTINCT kind) FROM e2e_events"), kJobs);
    EXPECT_EQ(scalar("SELECT COUNT(*) FROM dbsup_jobs j WHERE NOT EXISTS (SELECT 1 FROM "
                     "e2e_events e WHERE e.job_id = CAST(j.id AS TEXT))"),
              0);
    json stats = sup.stats();
    EXPECT_GT(stats["jobs"]["rescued_total"].get<int>(), 0) << stats["jobs"].dump();
    // The database is the truth; a worker killed between COMMIT and its counter
    // increment leaves a success uncounted, so the counter may be a little short.
    EXPECT_EQ(stats["queue"]["succeeded"], kJobs);
    EXPECT_GE(stats["jobs"]["claimed_total"].get<int>(), stats["jobs"]["succeeded_total"].get<int>());
}

TEST_P(QueueE2ETest, SigtermDrainsLeavesNothingRunningAndCountsNoAttemptForUnstarted) {
    TempDir dir;
    enqueue("sleep", R"({"ms": 200})", 1000);
    SupervisorProcess sup(dir, "graceful_timeout_s = 10", {"--workers", "2"}, {},
                          config("claim_batch = 8\n"));
    wait_for_counts([](auto& n) { return n["succeeded"] >= 8; }, 20s);
    auto stop = std::chrono::steady_clock::now();
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(15s), 0);
    EXPECT_LT(std::chrono::steady_clock::now() - stop, 10s);
    auto c = counts();
    EXPECT_EQ(c["running"], 0) << describe(c);
    EXPECT_GT(c["available"], 0) << describe(c);
    EXPECT_EQ(c["succeeded"] + c["available"], 1000) << describe(c);
    EXPECT_EQ(scalar("SELECT COUNT(*) FROM dbsup_jobs WHERE state = 'available' AND attempts <> 0"),
              0);
    EXPECT_GT(sup.stats()["jobs"]["released_total"].get<int>(), 0);
}

TEST_P(QueueE2ETest, AJobWhoseWorkerHangsIsTakenBackWhenItsLeaseExpires) {
    TempDir dir;
    enqueue("sleep", R"({"ms": 1500})", 1);
    SupervisorProcess sup(dir, "worker_timeout_s = 120", {"--workers", "2"}, {},
                          config("lease_s = 1\n", "[worker]\nthreads = 1\n"));
    std::vector<Job> running = wait_for_running(1);
    ASSERT_FALSE(running.empty());
    pid_t hung = worker_pid(running[0]);
    ASSERT_EQ(::kill(hung, SIGSTOP), 0);
    auto c = wait_for_counts([](auto& n) { return n["succeeded"] == 1; }, 20s);
    ::kill(hung, SIGCONT);
    EXPECT_EQ(c["succeeded"], 1) << describe(c);
    Job job = queue().list(*session_, "succeeded", "", 1).at(0);
    EXPECT_EQ(job.attempts, 2);
    std::this_thread::sleep_for(2s);  // the woken worker must not undo the other's success
    EXPECT_EQ(counts()["succeeded"], 1);
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

// A job that kills its worker each time it runs: the supervisor charges an
// attempt to it alone, so it ends dead while the seven jobs claimed with it in
// each batch, never started, go back untouched and then succeed.
// The housekeeping thread renews the leases its runner threads' jobs hold:
// a job running three times as long as its lease is never taken back.
TEST_P(QueueE2ETest, AJobRunningLongerThanItsLeaseKeepsIt) {
    TempDir dir;
    enqueue("sleep", R"({"ms": 3000})", 1);
    SupervisorProcess sup(dir, "", {"--workers", "2"}, {},
                          config("lease_s = 1\n", "[worker]\nthreads = 2\n"));
    expect_ran_once_in_one_attempt(sup, "the job was taken back while it ran");
}

// A drain lets running jobs finish: their leases are renewed until they do. A
// second supervisor on the same queue, at work meanwhile, must not take the job
// back from the draining one and run it again.
TEST_P(QueueE2ETest, AJobLongerThanItsLeaseKeepsItThroughADrain) {
    TempDir dir;
    enqueue("sleep", R"({"ms": 3000})", 1);
    const std::string toml = config("lease_s = 1\n", "[worker]\nthreads = 1\n");
    SupervisorProcess draining(dir, "graceful_timeout_s = 20", {"--workers", "1"}, {}, toml, "a");
    std::vector<Job> running = wait_for_running(1);
    ASSERT_FALSE(running.empty());
    SupervisorProcess other(dir, "", {"--workers", "1"}, {}, toml, "b");
    other.wait_for([](const json& doc) { return doc["supervisor"]["workers_alive"] == 1; });
    draining.signal(SIGTERM);
    EXPECT_EQ(draining.wait_exit(), 0);
    expect_ran_once_in_one_attempt(
        other, "the job was taken back from the draining worker and run again");
}

// The whole supervisor dies with its worker (power cut, kill -9 of both): the
// next supervisor reads the stale segment's marks of started claims, so only
// the job that was running pays an attempt; the 7 claimed behind it do not.
TEST_P(QueueE2ETest, AfterAWholeSupervisorCrashOnlyTheStartedClaimPaysAnAttempt) {
    TempDir dir;
    enqueue("sleep", R"({"ms": 600})", 8);
    const std::string toml = config("claim_batch = 8\nlease_s = 2\n", "[worker]\nthreads = 1\n");
    {
        SupervisorProcess crashed(dir, "", {"--workers", "1"}, {}, toml, "crashed");
        std::vector<Job> running = wait_for_running(8);
        ASSERT_EQ(running.size(), 8u);
        std::this_thread::sleep_for(300ms);  // the first has started
        crashed.signal(SIGSTOP);             // it must not see its worker die
        ASSERT_EQ(::kill(worker_pid(running[0]), SIGKILL), 0);
        crashed.signal(SIGKILL);
        EXPECT_EQ(crashed.wait_exit(), -SIGKILL);
    }
    SupervisorProcess next(dir, "", {"--workers", "1"}, {}, toml, "next");
    auto c = wait_for_counts([](auto& n) { return n["succeeded"] == 8; }, 30s);
    EXPECT_EQ(c["succeeded"], 8) << describe(c);
    EXPECT_EQ(scalar("SELECT COUNT(*) FROM dbsup_jobs WHERE attempts = 2"), 1);
    EXPECT_EQ(scalar("SELECT COUNT(*) FROM dbsup_jobs WHERE attempts = 1"), 7);
    next.signal(SIGTERM);
    EXPECT_EQ(next.wait_exit(), 0);
}

// A job that kills its worker whenever it runs (here: SIGKILL while it runs,
// three times, max_attempts 3) ends dead; the 7 quick jobs claimed in the same
// batch of 8 behind it never started, so none costs an attempt. Which claims
// were started is what the worker's runner thread marked in shared memory.
void QueueE2ETest::expect_poison_dead_alone(const std::string& task, const std::string& payload,
                                            const std::string& tasks_toml,
                                            const std::string& neighbour_task,
                                            const std::string& neighbour_payload,
                                            int neighbour_attempts) {
    TempDir dir;
    std::vector<NewJob> jobs(8);
    jobs[0] = {task, payload, "", 0, 0, 3, "", 0};  // runs first: priority 0
    for (std::size_t i = 1; i < jobs.size(); ++i)
        jobs[i] = {neighbour_task, neighbour_payload, "", 1, 0, 3, "", 0};
    std::string poison =
        session_->transact([&](Session& s) { return queue().enqueue_many(s, jobs); }).at(0);
    SupervisorProcess sup(dir, "restart_backoff_ms = [10, 100]", {"--workers", "1"}, {},
                          config("claim_batch = 8\n", "[worker]\nthreads = 1\n" + tasks_toml));
    int kills = 0;
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (kills < 3 && std::chrono::steady_clock::now() < deadline) {
        Job p = queue().find(*session_, poison).value();
        if (p.state != "running" || p.attempts != kills + 1) {  // not yet claimed again
            std::this_thread::sleep_for(20ms);
            continue;
        }
        std::this_thread::sleep_for(300ms);  // its batch neighbours wait behind it
        ASSERT_EQ(::kill(worker_pid(p), SIGKILL), 0);
        ++kills;
    }
    auto c = wait_for_counts([](auto& n) { return n["succeeded"] == 7; }, 20s);
    EXPECT_EQ(kills, 3);
    EXPECT_EQ(c["succeeded"], 7) << describe(c);
    EXPECT_EQ(c["dead"], 1) << describe(c);
    Job dead = queue().find(*session_, poison).value();
    EXPECT_EQ(dead.state, "dead");
    EXPECT_NE(dead.last_error.find("signal 9"), std::string::npos) << dead.last_error;
    for (const Job& j : queue().list(*session_, "succeeded", "", 10))
        EXPECT_EQ(j.attempts, neighbour_attempts) << "a claim never started cost an attempt";
    EXPECT_EQ(sup.stats()["jobs"]["rescued_total"].get<int>(), 3 * 8) << "all claims put back";
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

// The handler runs inside the batch's transaction (BatchTransaction::run).
TEST_P(QueueE2ETest, AJobThatKillsItsWorkerEndsDeadAndTakesNoBatchNeighbourWithIt) {
    expect_poison_dead_alone("sleep", R"({"ms": 30000})", "");
}

// A task on another database runs on its own (JobRunner::run_job): a SQLite
// query that counts for minutes, on a file beside the queue's database.
TEST_P(QueueE2ETest, AJobOnAnotherDatabaseThatKillsItsWorkerEndsDeadAlone) {
    expect_poison_dead_alone(
        "count_forever", "{}",
        databases_.toml(TestBackend::sqlite, "other") +
            "[tasks.count_forever]\ndatabase = \"other\"\nsql = \"WITH RECURSIVE c(x) AS "
            "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 4000000000) "
            "SELECT count(*) FROM c\"\n");
}

// A SQL task on the queue's own database. On PostgreSQL its statements wait in
// the batch's pipeline, sent when the batch commits (BatchTransaction::
// send_pipeline): a death then may be any job of the batch, so the first kill
// costs each of the 8 claims an attempt. From then on they were tried before
// and run one at a time: the next two kills cost the poison alone. On SQLite
// the task runs in its own savepoint, marked as the one job running.
TEST_P(QueueE2ETest, AJobWhoseBatchOnTheQueueDatabaseKillsItsWorkerEndsDeadAlone) {
    const bool pg = is_postgres(GetParam());
    const std::string hang = pg ? "SELECT pg_sleep(600)"
                                : "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
                                  "FROM c WHERE x < 4000000000) SELECT count(*) FROM c";
    expect_poison_dead_alone("hang", "{}", "[tasks.hang]\nsql = \"" + hang + "\"\n",
                             "noop", "{}", pg ? 2 : 1);
    if (pg)  // the killed workers' server processes would sleep on for minutes
        scalar("SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
               "WHERE query LIKE '%pg_sleep(600)%' AND pid <> pg_backend_pid()");
}

TEST_P(QueueE2ETest, BulkEnqueueOfAHundredThousandLinesAndABadLineInTheMiddle) {
    TempDir dir;
    std::string good = (dir.path() / "good.jsonl").string();
    std::string bad = (dir.path() / "bad.jsonl").string();
    {
        std::ofstream g(good), b(bad);
        for (int i = 1; i <= 100'000; ++i) {
            g << "{\"kind\": \"bulk-" << i << "\"}\n";
            b << (i == 50'001 ? std::string("{\"kind\": oops}") : "{\"kind\": \"b\"}") << "\n";
        }
    }
    std::ofstream(dir.path() / "c.toml") << config("");
    std::string cfg = "--config " + (dir.path() / "c.toml").string();
    CommandRun ok = run_command(cfg + " enqueue record_event --jsonl " + good);
    EXPECT_EQ(ok.exit_code, 0) << ok.output;
    EXPECT_NE(ok.output.find("enqueued 100000 jobs"), std::string::npos) << ok.output;
    CommandRun rejected = run_command(cfg + " enqueue record_event --jsonl " + bad);
    EXPECT_EQ(rejected.exit_code, 2) << rejected.output;
    EXPECT_NE(rejected.output.find(bad + ":50001: not a JSON object"), std::string::npos)
        << rejected.output;
    EXPECT_EQ(counts()["available"], 100'000);
    EXPECT_EQ(scalar("SELECT COUNT(*) FROM dbsup_jobs WHERE CAST(payload AS TEXT) LIKE '%bulk-77777%'"), 1);
}

// From stdin: blank lines are skipped but counted, so an error names the line
// an editor shows; a last line without its newline is a job too.
TEST_P(QueueE2ETest, BulkEnqueueFromStdinSkipsBlankLinesAndNumbersEveryLine) {
    TempDir dir;
    const auto good = dir.path() / "good.jsonl";
    const auto bad = dir.path() / "bad.jsonl";
    std::ofstream(good) << "{\"kind\": \"first\"}\n\n   \r\n{\"kind\": \"last\"}";
    std::ofstream(bad) << "{\"kind\": \"fine\"}\n\n[1, 2]\n{\"kind\": \"never\"}\n";
    std::ofstream(dir.path() / "c.toml") << config("");
    std::string cfg = "--config " + (dir.path() / "c.toml").string();
    CommandRun ok = run_command(cfg + " enqueue record_event --jsonl - < " + good.string());
    EXPECT_EQ(ok.exit_code, 0) << ok.output;
    EXPECT_NE(ok.output.find("enqueued 2 jobs"), std::string::npos) << ok.output;
    CommandRun rejected = run_command(cfg + " enqueue record_event --jsonl - < " + bad.string());
    EXPECT_EQ(rejected.exit_code, 2) << rejected.output;
    EXPECT_NE(rejected.output.find("stdin:3: not a JSON object: [1, 2]"), std::string::npos)
        << rejected.output;
    EXPECT_EQ(counts()["available"], 2);
    EXPECT_EQ(scalar("SELECT COUNT(*) FROM dbsup_jobs WHERE CAST(payload AS TEXT) LIKE '%last%'"), 1);
}

// A SQL task that is not ready calls dbsup_snooze(seconds): its job waits and
// runs again later, and no attempt is spent (one allowed here), until it can.
TEST_P(QueueE2ETest, ASnoozingSqlTaskWaitsWithoutSpendingAnAttempt) {
    TempDir dir;
    const std::string toml = config(
        "", "[tasks.gate]\nsql = [\"SELECT dbsup_snooze(0.2) WHERE NOT EXISTS (SELECT 1 FROM "
            "e2e_events WHERE kind = 'open')\", \"INSERT INTO e2e_events (job_id, kind) VALUES "
            "(:job_id, 'passed')\"]\nmax_attempts = 1\n");
    enqueue("gate", "{}", 1, toml);
    SupervisorProcess sup(dir, "", {"--workers", "1"}, {}, toml);
    json snoozed = sup.wait_for([](const json& d) { return d["jobs"]["snoozed_total"] >= 3; });
    EXPECT_EQ(snoozed["jobs"]["dead_total"], 0) << snoozed["jobs"].dump();
    std::vector<Job> waiting = queue().list(*session_, "available", "gate", 1);
    ASSERT_EQ(waiting.size(), 1u) << describe(counts());
    EXPECT_EQ(waiting[0].attempts, 0);
    session_->transact([](Session& s) {
        s.execute("INSERT INTO e2e_events (job_id, kind) VALUES ('gate-key', 'open')");
    });
    auto c = wait_for_counts([](auto& n) { return n["succeeded"] == 1; }, 10s);
    EXPECT_EQ(c["succeeded"], 1) << describe(c);
    EXPECT_EQ(scalar("SELECT COUNT(*) FROM e2e_events WHERE kind = 'passed'"), 1);
    EXPECT_EQ(queue().list(*session_, "succeeded", "gate", 1).at(0).attempts, 1);
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

// Command tasks: a program per job, the payload on its stdin (1 MB and
// unicode round-trip), the job's id in its environment; its exit code decides:
// 0 succeeds, 75 snoozes, another fails with its output's tail; a hang is
// killed at the timeout with its whole process group; a missing program is a
// clear error.
TEST_P(QueueE2ETest, CommandTasksTakeThePayloadOnStdinAndTheirExitCodeDecides) {
    TempDir dir;
    const std::string d = dir.path().string();
    const std::string toml = config(
        "", "[tasks.save]\ncommand = [\"/bin/sh\", \"-c\", \"cat > \\\"$CMD_DIR/$DBSUP_JOB_ID\\\"\"]\n"
            "[tasks.fail]\ncommand = [\"/bin/sh\", \"-c\", \"echo to-stdout; echo to-stderr >&2; "
            "exit 3\"]\nmax_attempts = 1\n"
            "[tasks.hang]\ncommand = [\"/bin/sh\", \"-c\", \"sleep 60 & echo $! > "
            "\\\"$CMD_DIR/grandchild\\\"; wait\"]\nmax_attempts = 1\ntimeout_ms = 500\n"
            "[tasks.missing]\ncommand = [\"/nonexistent/program\"]\n"
            "[tasks.later]\ncommand = [\"/bin/sh\", \"-c\", \"test -e \\\"$CMD_DIR/ready\\\" || "
            "{ echo dbsup_snooze:100; exit 75; }\"]\nmax_attempts = 1\n");
    const std::string big = "h\u00e9llo \u2713 " + std::string(1 << 20, 'x');
    enqueue("save", json{{"text", big}}.dump(), 1, toml);
    for (const char* task : {"fail", "hang", "missing", "later"}) enqueue(task, "{}", 1, toml);
    SupervisorProcess sup(dir, "", {"--workers", "2"}, {"CMD_DIR=" + d}, toml);
    auto c = wait_for_counts([](auto& n) { return n["succeeded"] == 1 && n["dead"] == 3; }, 20s);
    EXPECT_EQ(c["succeeded"], 1) << describe(c);
    const Job saved = queue().list(*session_, "succeeded", "save", 1).at(0);
    std::ifstream in(dir.path() / saved.id, std::ios::binary);
    const json got = json::parse(in, nullptr, false);
    ASSERT_FALSE(got.is_discarded()) << "the payload did not arrive whole on stdin";
    EXPECT_EQ(got["text"], big);
    std::map<std::string, std::string> errors;
    for (const Job& j : queue().list(*session_, "dead", "", 10)) errors[j.task] = j.last_error;
    EXPECT_NE(errors["fail"].find("exited with status 3; output: to-stdout\nto-stderr"),
              std::string::npos) << errors["fail"];
    EXPECT_NE(errors["hang"].find("timed out after 500 ms; its process group was killed"),
              std::string::npos) << errors["hang"];
    const pid_t grandchild = std::stoi(std::string(std::istreambuf_iterator<char>(
        std::ifstream(dir.path() / "grandchild").rdbuf()), {}));
    std::this_thread::sleep_for(200ms);
    // Gone, or a zombie nobody reaped yet: either way killed.
    std::ifstream stat("/proc/" + std::to_string(grandchild) + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto state = line.rfind(") ");
    EXPECT_TRUE(!stat || (state != std::string::npos && line[state + 2] == 'Z'))
        << "the hanging command's child outlived it: " << line;
    EXPECT_NE(errors["missing"].find("command /nonexistent/program: cannot start"),
              std::string::npos) << errors["missing"];
    EXPECT_FALSE(errors.contains("later")) << "exit 75 spent its only attempt";
    sup.wait_for([](const json& doc) { return doc["jobs"]["snoozed_total"] >= 2; });
    std::ofstream(dir.path() / "ready") << "";
    c = wait_for_counts([](auto& n) { return n["succeeded"] == 2; }, 10s);
    EXPECT_EQ(c["succeeded"], 2) << describe(c);
    EXPECT_EQ(c["dead"], 3) << describe(c);
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

// `jobs pause` from another process: neither of two supervisors on the
// database claims the queue's jobs (the claim itself checks), the stats say
// so, and `jobs resume` lets them all run.
TEST_P(QueueE2ETest, PauseFromAnotherProcessHoldsEverySupervisorUntilResume) {
    TempDir dir;
    const std::string toml = config("");
    std::ofstream(dir.path() / "cli.toml") << toml;
    const std::string cli = "--config " + (dir.path() / "cli.toml").string() + " jobs ";
    SupervisorProcess a(dir, "", {"--workers", "1"}, {}, toml, "a");
    SupervisorProcess b(dir, "", {"--workers", "1"}, {}, toml, "b");
    for (SupervisorProcess* sup : {&a, &b})
        sup->wait_for([](const json& d) { return d["supervisor"]["workers_alive"] == 1; });
    CommandRun paused = run_command(cli + "pause default");
    ASSERT_EQ(paused.exit_code, 0) << paused.output;
    EXPECT_NE(paused.output.find("queue 'default' paused"), std::string::npos) << paused.output;
    enqueue("record_event", R"({"kind": "held"})", 20);
    std::this_thread::sleep_for(1s);
    auto c = counts();
    EXPECT_EQ(c["available"], 20) << describe(c);
    EXPECT_EQ(c["succeeded"], 0) << describe(c);
    for (SupervisorProcess* sup : {&a, &b})
        EXPECT_EQ(sup->wait_for([](const json& d) {
                          return !d["queues"]["paused"].empty();
                      })["queues"]["paused"],
                  json::array({"default"}));
    // Held jobs age: what an operator pages on.
    json aged = a.wait_for([](const json& d) {
        return d["queues"]["oldest_waiting_seconds"].value("default", 0.0) >= 0.5;
    });
    EXPECT_GE(aged["queues"]["oldest_waiting_seconds"].value("default", 0.0), 0.5) << aged["queues"];
    EXPECT_EQ(run_command(cli + "pause 'no good'").exit_code, 2);
    CommandRun resumed = run_command(cli + "resume default");
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    c = wait_for_counts([](auto& n) { return n["succeeded"] == 20; }, 10s);
    EXPECT_EQ(c["succeeded"], 20) << describe(c);
    EXPECT_EQ(scalar("SELECT COUNT(*) FROM e2e_events WHERE kind = 'held'"), 20);
    for (SupervisorProcess* sup : {&a, &b}) {
        sup->signal(SIGTERM);
        EXPECT_EQ(sup->wait_exit(), 0);
    }
}

// `jobs cancel` on a running job: its worker stops it (the built-in sleep
// waits on its stop token, a command task's process group is killed, on
// PostgreSQL a pg_sleep is cancelled on the server) and it ends cancelled, not retried; the worker goes on working.
TEST_P(QueueE2ETest, CancellingARunningJobStopsItAndItEndsCancelled) {
    const std::string toml = config("", "[tasks.server_sleep]\nsql = \"SELECT pg_sleep(30)\"\n"
                                        "[tasks.program]\ncommand = [\"/bin/sleep\", \"30\"]\n");
    TempDir dir;
    std::ofstream(dir.path() / "c.toml") << toml;
    const std::string cfg = "--config " + (dir.path() / "c.toml").string();
    SupervisorProcess sup(dir, "", {"--workers", "1"}, {}, toml);
    std::vector<std::pair<std::string, std::string>> cases = {{"sleep", R"({"ms": 30000})"},
                                                              {"program", "{}"}};
    if (is_postgres(GetParam())) cases.push_back({"server_sleep", "{}"});
    for (const auto& [task, payload] : cases) {
        enqueue(task, payload, 1, toml);
        wait_for_counts([](auto& n) { return n["running"] == 1; }, 20s);
        const std::string id = queue().list(*session_, "running", task, 1).at(0).id;
        expect_operator_cancel_stops(cfg, id, task, [&] { return queue().find(*session_, id); }, 1s);
        const CommandRun shown = run_command(cfg + " jobs show " + id);
        EXPECT_NE(shown.output.find("\"state\": \"cancelled\""), std::string::npos) << shown.output;
    }
    if (is_postgres(GetParam())) {
        EXPECT_EQ(scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'"),
                  0) << "the cancelled statement still runs on the server";
    }
    // The worker and its connections are fine: the next job runs.
    enqueue("record_event", R"({"kind": "after"})", 1, toml);
    auto c = wait_for_counts([](auto& n) { return n["succeeded"] == 1; }, 10s);
    EXPECT_EQ(c["succeeded"], 1) << describe(c);
    const CommandRun again =
        run_command(cfg + " jobs cancel " + queue().list(*session_, "succeeded", "", 1).at(0).id);
    EXPECT_NE(again.exit_code, 0);
    EXPECT_NE(again.output.find("is neither waiting nor running"), std::string::npos) << again.output;
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

// Two queues in one supervisor, [queues.default] with two threads and
// [queues.mail] with one: while default is flooded with 500 ms jobs, each mail
// job starts at once, however long the flood's backlog.
TEST_P(QueueE2ETest, AFloodedQueueNeverHoldsUpAnother) {
    const std::string toml = databases_.toml(GetParam()) +
                             "[queues.default]\nthreads = 2\n[queues.mail]\nthreads = 1\n"
                             "[tasks.slow]\ncommand = [\"/bin/sleep\", \"0.5\"]\n"
                             "[tasks.quick]\nsql = \"SELECT 1\"\n";
    const Queue q = Queue::from_config(ConfigLoader::load_string(toml, "test"));
    std::vector<NewJob> flood(40);
    for (NewJob& j : flood) j.task = "slow";  // 10 s of work for two threads
    session_->transact([&](Session& s) { q.enqueue_many(s, flood); });
    TempDir dir;
    SupervisorProcess sup(dir, "", {"--workers", "1"}, {}, toml);
    wait_for_counts([](auto& n) { return n["running"] == 2; }, 20s);
    std::vector<std::int64_t> waits;
    for (int i = 0; i < 5; ++i) {
        NewJob mail;
        mail.task = "quick";
        mail.queue = "mail";
        const std::string id = session_->transact([&](Session& s) { return q.enqueue(s, mail); });
        std::optional<Job> job;
        for (auto deadline = std::chrono::steady_clock::now() + 5s;
             std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(5ms)) {
            job = queue().find(*session_, id);
            if (job && job->state == "succeeded") break;
        }
        ASSERT_TRUE(job && job->state == "succeeded") << "mail job " << i << " never ran";
        waits.push_back(job->finished_at_ms - job->created_at_ms);
        std::this_thread::sleep_for(200ms);
    }
    EXPECT_LT(counts()["available"], 35) << "the flood did not run meanwhile";
    EXPECT_GT(counts()["available"], 0) << "the flood was over before the mail jobs came";
    std::sort(waits.begin(), waits.end());
    std::cout << "mail jobs, ms from enqueue to done:";
    for (std::int64_t w : waits) std::cout << " " << w;
    std::cout << "\n";
    EXPECT_LT(waits[2], 100) << "median ms from enqueue to done; all: " << waits[0] << " .. "
                             << waits[4];
    EXPECT_LT(waits[4], 1000) << "a mail job waited behind the flood";
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

DBSUP_ALL_BACKENDS(QueueE2ETest);

// Two supervisors (4 workers each) on one PostgreSQL queue, directly and through
// one PgBouncer: every job runs once. The runs table has no unique key, so a
// job run twice would show as two rows.
class QueueTwoSupervisors : public BackendTest {};

TEST_P(QueueTwoSupervisors, ShareOnePostgresQueueAndRunNoJobTwice) {
    TestDatabases databases;
    databases.drop_queue_tables(GetParam());
    Session session(databases.pool(GetParam(), PoolOptions{}), "two-supervisors");
    session.transact([](Session& s) {
        s.execute("DROP TABLE IF EXISTS e2e_runs");
        s.execute("CREATE TABLE e2e_runs (job_id TEXT NOT NULL)");
    });
    QueueSchema::migrate(session);
    Queue queue(QueueConfig{}, {});
    std::string toml = databases.toml(GetParam()) +
                       "[queue]\npoll_interval_ms = 5\nclaim_batch = 8\n"
                       "[tasks.record_run]\nsql = \"INSERT INTO e2e_runs VALUES (:job_id)\"\n";
    TempDir dir;
    SupervisorProcess a(dir, "", {"--workers", "4"}, {}, toml, "a");
    SupervisorProcess b(dir, "", {"--workers", "4"}, {}, toml, "b");
    for (SupervisorProcess* sup : {&a, &b})  // both at work before the jobs arrive
        sup->wait_for([](const json& doc) { return doc["supervisor"]["workers_alive"] == 4; });
    std::vector<NewJob> jobs(5000);
    for (NewJob& j : jobs) j.task = "record_run";
    session.transact([&](Session& s) { queue.enqueue_many(s, jobs); });
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (queue.counts(session)["succeeded"] < 5000 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(100ms);
    a.signal(SIGTERM);
    b.signal(SIGTERM);
    EXPECT_EQ(a.wait_exit(), 0);
    EXPECT_EQ(b.wait_exit(), 0);
    EXPECT_EQ(queue.counts(session)["succeeded"], 5000);
    auto scalar = [&](const char* sql) {
        return session.transact([&](Session& s) { return s.execute(sql).scalar<std::int64_t>(); });
    };
    EXPECT_EQ(scalar("SELECT COUNT(*) FROM e2e_runs"), 5000);
    EXPECT_EQ(scalar("SELECT COUNT(DISTINCT job_id) FROM e2e_runs"), 5000);
    EXPECT_GT(a.stats()["jobs"]["succeeded_total"].get<int>(), 0) << "supervisor a did nothing";
    EXPECT_GT(b.stats()["jobs"]["succeeded_total"].get<int>(), 0) << "supervisor b did nothing";
}

INSTANTIATE_TEST_SUITE_P(Backends, QueueTwoSupervisors,
                         ::testing::Values(TestBackend::postgresql, TestBackend::pgbouncer),
                         backend_param_name);

// LD_PRELOAD for libfaketime. A sanitizer's runtime must come first in a
// sanitized build, or it refuses to start: the one this test runs with, from
// its own memory map.
std::string faketime_preload() {
    std::string preload;
    std::ifstream maps("/proc/self/maps");
    for (std::string line; std::getline(maps, line);) {
        const auto slash = line.find('/');
        if (slash == std::string::npos) continue;
        const std::string path = line.substr(slash);
        const bool sanitizer = path.find("/libasan.so") != std::string::npos ||
                               path.find("/libtsan.so") != std::string::npos;
        if (sanitizer && preload.find(path) == std::string::npos) preload += path + ":";
    }
    return "LD_PRELOAD=" + preload + "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
}

// Two hosts on one PostgreSQL, one clock an hour behind (libfaketime, in the
// supervisor and its workers): leases are written and compared on the
// server's clock, so the other host never takes back a job that is running.
TEST(QueueClock, AHostWithASkewedClockKeepsItsLeases) {
    PostgresQueue pg;
    pg.enqueue_sleep(3000, Queue::now_ms() - 2 * 3600 * 1000);  // due on both hosts' clocks
    const std::string toml = pg.databases.toml(TestBackend::postgresql) +
                             "[queue]\npoll_interval_ms = 10\nlease_s = 2\n[worker]\nthreads = 1\n";
    TempDir dir;
    SupervisorProcess behind(
        dir, "", {"--workers", "1"},
        {faketime_preload(), "FAKETIME=-1h", "FAKETIME_DONT_FAKE_MONOTONIC=1"},
        toml, "behind");
    ASSERT_EQ(pg.wait_for("running", 1, 20s), 1) << "the host behind claimed nothing";
    SupervisorProcess on_time(dir, "", {"--workers", "1"}, {}, toml, "on-time");
    ASSERT_EQ(pg.wait_for("succeeded", 1, 20s), 1);
    EXPECT_EQ(pg.queue.list(pg.session, "succeeded", "", 1).at(0).attempts, 1)
        << "the host on time took the job back from the host behind";
    behind.signal(SIGTERM);
    on_time.signal(SIGTERM);
    EXPECT_EQ(behind.wait_exit(), 0);
    EXPECT_EQ(on_time.wait_exit(), 0);
}

// The supervisor's last put-back meets a row lock it cannot get (here a
// session of the test's; in the field a killed worker's backend still running
// on the server). It must still exit in bounded time, leaving that job to its
// lease.
TEST(QueueStop, ALockedRowCannotKeepTheSupervisorFromExiting) {
    PostgresQueue pg;
    pg.enqueue_sleep(60000);
    TempDir dir;
    SupervisorProcess sup(dir, "graceful_timeout_s = 1", {"--workers", "1"}, {},
                          pg.databases.toml(TestBackend::postgresql) +
                              "[queue]\npoll_interval_ms = 10\n");
    ASSERT_EQ(pg.wait_for("running", 1, 20s), 1);
    Session locker(pg.pool, "row-locker");
    locker.begin();
    ASSERT_EQ(locker.execute("SELECT id FROM dbsup_jobs FOR UPDATE").size(), 1u);
    const auto stop = std::chrono::steady_clock::now();
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(30s), 0);
    EXPECT_LT(std::chrono::steady_clock::now() - stop, 10s) << "graceful 1 s + bounded put-back";
    locker.rollback();
    EXPECT_EQ(pg.queue.counts(pg.session)["running"], 1) << "left to its lease";
}

// A job whose task cannot get a connection from its worker's exhausted pool
// never ran: it goes back without an attempt, and runs later.
TEST(QueuePoolTimeout, AJobThatCannotCheckOutAConnectionCostsNoAttempt) {
    TestDatabases databases;
    databases.drop_queue_tables(TestBackend::postgresql);
    Session session(databases.pool(TestBackend::postgresql, PoolOptions{}), "pool-timeout");
    QueueSchema::migrate(session);
    Queue queue(QueueConfig{}, {});
    std::string toml = databases.toml(TestBackend::postgresql) +
                       databases.toml(TestBackend::postgresql, "other") +
                       "pool_size = 1\npool_timeout_ms = 100\n"
                       "[worker]\nthreads = 2\n[queue]\npoll_interval_ms = 10\nclaim_batch = 1\n"
                       "[tasks.slow]\ndatabase = \"other\"\nsql = \"SELECT pg_sleep(0.5)\"\n";
    std::vector<NewJob> jobs(4);
    for (NewJob& j : jobs) j.task = "slow";
    session.transact([&](Session& s) { queue.enqueue_many(s, jobs); });
    TempDir dir;
    SupervisorProcess sup(dir, "", {"--workers", "1"}, {}, toml);
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (queue.counts(session)["succeeded"] < 4 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
    EXPECT_EQ(queue.counts(session)["succeeded"], 4);
    for (const Job& j : queue.list(session, "succeeded", "", 10))
        EXPECT_EQ(j.attempts, 1) << "a pool timeout cost job " << j.id << " an attempt";
    EXPECT_GT(sup.stats()["jobs"]["released_total"].get<int>(), 0) << "no checkout timed out";
}

// The operator's commands against a real queue.
TEST(JobsCli, ListShowRetryCancelAndCounts) {
    TempDir dir;
    std::string cfg = "--config " + (dir.path() / "c.toml").string();
    std::ofstream(dir.path() / "c.toml")
        << "[databases.main]\nurl = \"sqlite:///" << (dir.path() / "q.db").string() << "\"\n";
    EXPECT_NE(run_command(cfg + " jobs counts").output.find("no queue tables yet: run "
                                                            "dbsupervisor init-db"),
              std::string::npos);
    EXPECT_EQ(run_command(cfg + " init-db").exit_code, 0);
    CommandRun added = run_command(cfg + " enqueue noop --payload '{\"a\": 1}' --delay 1h");
    ASSERT_EQ(added.exit_code, 0) << added.output;
    std::string id = added.output.substr(0, 36);
    CommandRun list = run_command(cfg + " jobs list --json");
    json listed = json::parse(list.output);
    ASSERT_EQ(listed.size(), 1u) << list.output;
    EXPECT_EQ(listed[0]["id"], id);
    EXPECT_EQ(listed[0]["payload"]["a"], 1);
    EXPECT_NE(run_command(cfg + " jobs show " + id).output.find("\"state\": \"available\""),
              std::string::npos);
    EXPECT_EQ(run_command(cfg + " jobs cancel " + id).exit_code, 0);
    EXPECT_NE(run_command(cfg + " jobs show " + id).output.find("cancelled by operator"),
              std::string::npos);
    EXPECT_EQ(run_command(cfg + " jobs cancel " + id).exit_code, 1) << "a dead job was cancelled";
    EXPECT_NE(run_command(cfg + " jobs retry --dead").output.find("1 dead job(s)"),
              std::string::npos);
    json counts = json::parse(run_command(cfg + " jobs counts --json").output);
    EXPECT_EQ(counts["by_state"]["available"], 1);
    EXPECT_EQ(run_command(cfg + " enqueue noop --delay soon").exit_code, 2);
    // A unique key: the duplicate prints the queued job's id and says so, exit 0.
    CommandRun unique = run_command(cfg + " enqueue noop --delay 1h --unique-key daily");
    ASSERT_EQ(unique.exit_code, 0) << unique.output;
    CommandRun again = run_command(cfg + " enqueue noop --unique-key daily --unique-for 10m");
    EXPECT_EQ(again.exit_code, 0) << again.output;
    EXPECT_EQ(again.output.substr(0, 36), unique.output.substr(0, 36)) << again.output;
    EXPECT_NE(again.output.find("already queued"), std::string::npos) << again.output;
    EXPECT_EQ(run_command(cfg + " enqueue noop --unique-for 10m").exit_code, 2);
    EXPECT_EQ(run_command(cfg + " jobs show").exit_code, 2);
}

// workers x (pool_size + max_overflow) beyond what PostgreSQL takes: refused.
TEST(RunCli, RefusesMoreConnectionsThanPostgresTakes) {
    TestDatabases databases;
    TempDir dir;
    std::ofstream(dir.path() / "c.toml") << databases.toml(TestBackend::postgresql);
    CommandRun r = run_command("--config " + (dir.path() / "c.toml").string() +
                               " --workers 60 --stats-file " + (dir.path() / "s.json").string());
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("60 workers x (pool_size 4 + max_overflow 0 + 1 housekeeping) + 1 "
                            "listener = 301 connections, but "
                            "the server takes"),
              std::string::npos)
        << r.output;
}

// An async worker has an async pool beside its sync one: both are counted.
TEST(RunCli, CountsBothPoolsOfAnAsyncWorker) {
    TestDatabases databases;
    TempDir dir;
    std::ofstream(dir.path() / "c.toml") << "[worker]\nmode = \"async\"\n"
                                         << databases.toml(TestBackend::postgresql);
    CommandRun r = run_command("--config " + (dir.path() / "c.toml").string() +
                               " --workers 40 --stats-file " + (dir.path() / "s.json").string());
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("40 workers x (2 pools (sync and async) x (pool_size 4 + "
                            "max_overflow 0) + 1 housekeeping) + 1 listener = 361 connections"),
              std::string::npos)
        << r.output;
}

}  // namespace
}  // namespace dbsup::test
