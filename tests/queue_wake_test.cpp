// Wake-ups end to end (DESIGN section 7): idle workers of the real binary are
// woken for new jobs instead of polling. Every test polls rarely
// (poll_interval_ms = 60000, so the backstop poll is a minute away) and expects
// jobs to start within seconds: only a wake-up can start them.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "config/config_loader.hpp"
#include "shared/db/database_manager.hpp"
#include "shared/queue/queue.hpp"
#include "shared/queue/queue_schema.hpp"
#include "tests/support/backend_test.hpp"
#include "tests/support/own_postgres.hpp"
#include "tests/support/supervisor_process.hpp"

namespace dbsup::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr auto kSoon = 5s;  // a woken job starts in milliseconds; the backstop poll is 60 s away
const std::string kRarePolls =
    "[queue]\npoll_interval_ms = 60000\nretry_base_ms = 300\nretry_max_ms = 300\n"
    "[tasks.always_fails]\nsql = \"INSERT INTO wake_events (job_id, kind) VALUES (:job_id, "
    "NULL)\"\nmax_attempts = 2\n";

std::uint64_t stat(const json& doc, const char* group, const char* key) {
    return doc[group][key].get<std::uint64_t>();
}

class QueueWakeTest : public BackendTest {
protected:
    void SetUp() override {
        databases_.drop_queue_tables(GetParam());
        session_ = std::make_unique<Session>(make_pool(2, 0), "queue-wake");
        session_->transact([](Session& s) {
            s.execute("DROP TABLE IF EXISTS wake_events");
            s.execute("CREATE TABLE wake_events (job_id TEXT PRIMARY KEY, kind TEXT NOT NULL)");
        });
        QueueSchema::migrate(*session_);
    }

    std::string config() const { return databases_.toml(GetParam()) + kRarePolls; }

    /// Enqueues as `dbsupervisor enqueue` does, announcing the jobs.
    void enqueue(const std::string& task, std::int64_t run_at_ms = 0) {
        const Queue queue = Queue::from_config(ConfigLoader::load_string(config(), "test"));
        NewJob job;
        job.task = task;
        job.run_at_ms = run_at_ms;
        session_->transact([&](Session& s) { queue.enqueue(s, job); });
    }

    std::int64_t count(const std::string& state) {
        return Queue(QueueConfig{}, {}).counts(*session_)[state];
    }

    /// Polls the job counts until `state` has `n` jobs or `limit` passes.
    bool wait_for(const std::string& state, std::int64_t n, std::chrono::milliseconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (count(state) < n) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            std::this_thread::sleep_for(10ms);
        }
        return true;
    }

    /// A supervisor whose workers are all up and idle (their first claims made).
    std::unique_ptr<SupervisorProcess> start_idle(const TempDir& dir, int workers) {
        auto sup = std::make_unique<SupervisorProcess>(
            dir, "", std::vector<std::string>{"--workers", std::to_string(workers)},
            std::vector<std::string>{}, config());
        sup->wait_for([&](const json& d) {
            return d["supervisor"]["workers_alive"] == workers && d["supervisor"]["state"] == "running";
        });
        std::this_thread::sleep_for(1s);
        return sup;
    }

    std::unique_ptr<Session> session_;
};

TEST_P(QueueWakeTest, AJobEnqueuedIntoAnIdleFleetStartsAtOnce) {
    TempDir dir;
    auto sup = start_idle(dir, 2);
    EXPECT_EQ(sup->stats()["wake"]["mode"],
              is_postgres(GetParam()) ? "listen" : "local");
    for (int i = 1; i <= 3; ++i) {
        enqueue("noop");
        EXPECT_TRUE(wait_for("succeeded", i, kSoon)) << "job " << i << " was not woken for";
    }
    sup->signal(SIGTERM);
    EXPECT_EQ(sup->wait_exit(), 0);
}

// 4 workers x 4 threads sleep; each new job wakes one thread, whose claim finds
// it: no herd of empty claims.
TEST_P(QueueWakeTest, EachNewJobWakesOneThreadNotEveryIdleOne) {
    TempDir dir;
    auto sup = start_idle(dir, 4);
    const std::uint64_t empty_before = stat(sup->stats(), "jobs", "empty_claims_total");
    constexpr int kJobs = 10;
    for (int i = 1; i <= kJobs; ++i) {
        enqueue("noop");
        ASSERT_TRUE(wait_for("succeeded", i, kSoon));
        std::this_thread::sleep_for(50ms);
    }
    const json doc = sup->wait_for([&](const json& d) {
        return stat(d, "jobs", "succeeded_total") == kJobs;
    });
    // Woken threads that lost the race to a sibling make an empty claim; 16
    // woken per job would make about 150.
    EXPECT_LE(stat(doc, "jobs", "empty_claims_total") - empty_before, 5u) << doc["jobs"].dump();
    sup->signal(SIGTERM);
    EXPECT_EQ(sup->wait_exit(), 0);
}

// The retry of a failed job and a job enqueued for later start when due, not
// at the next poll.
TEST_P(QueueWakeTest, ARetryAndADelayedJobStartWhenDue) {
    TempDir dir;
    auto sup = start_idle(dir, 1);
    enqueue("always_fails");  // attempt 2 is due 0-300 ms after attempt 1 fails
    EXPECT_TRUE(wait_for("dead", 1, kSoon));
    EXPECT_EQ(Queue(QueueConfig{}, {}).list(*session_, "dead", "", 1).at(0).attempts, 2);

    const Queue queue(QueueConfig{}, {});
    enqueue("noop", queue.db_now() + 1500);
    std::this_thread::sleep_for(1s);
    EXPECT_EQ(count("succeeded"), 0) << "ran before its run_at";
    EXPECT_TRUE(wait_for("succeeded", 1, kSoon));
    sup->signal(SIGTERM);
    EXPECT_EQ(sup->wait_exit(), 0);
}

// wake = "poll": no listener, the supervisor polls for the fleet every
// poll_interval_ms (here 100 ms), and jobs still start.
TEST_P(QueueWakeTest, PollModeFindsJobsByPolling) {
    TempDir dir;
    SupervisorProcess sup(dir, "", {"--workers", "2"}, {},
                          databases_.toml(GetParam()) +
                              "[queue]\nwake = \"poll\"\npoll_interval_ms = 100\n");
    sup.wait_for([](const json& d) { return d["wake"]["mode"] == "poll"; });
    session_->transact([](Session& s) {  // not announced: only a poll finds it
        s.execute("INSERT INTO dbsup_jobs (id, queue, task, payload, state, priority, run_at, "
                  "attempts, max_attempts, created_at, updated_at) VALUES ('018f0000-0000-7000-8000-"
                  "000000000001', 'default', 'noop', '{}', 'available', 0, 0, 0, 5, 0, 0)");
    });
    EXPECT_TRUE(wait_for("succeeded", 1, kSoon));
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

DBSUP_ALL_BACKENDS(QueueWakeTest);

// dbsup_enqueue() in a transaction that rolls back leaves no job and wakes
// nobody; one that commits wakes a worker.
TEST(QueueWakeSql, TheSqlFunctionEnqueuesAndWakesWithTheCallersTransaction) {
    TestDatabases databases;
    databases.drop_queue_tables(TestBackend::postgresql);
    Session session(databases.pool(TestBackend::postgresql, PoolOptions{}), "sql-enqueue");
    QueueSchema::migrate(session);
    TempDir dir;
    SupervisorProcess sup(dir, "", {"--workers", "1"}, {},
                          databases.toml(TestBackend::postgresql) + "[queue]\npoll_interval_ms = 60000\n");
    sup.wait_for([](const json& d) { return d["wake"]["mode"] == "listen"; });
    std::this_thread::sleep_for(500ms);
    const std::uint64_t heard = stat(sup.stats(), "wake", "notifications_total");

    session.begin();
    session.execute("SELECT dbsup_enqueue('noop', '{\"n\": 1}')");
    session.rollback();
    std::this_thread::sleep_for(500ms);
    const Queue queue(QueueConfig{}, {});
    EXPECT_EQ(queue.counts(session)["available"] + queue.counts(session)["succeeded"], 0);
    EXPECT_EQ(stat(sup.stats(), "wake", "notifications_total"), heard) << "a rolled-back enqueue woke";

    const std::string id = session.transact([](Session& s) {
        return s.execute("SELECT dbsup_enqueue(task => 'noop', payload => '{\"n\": 2}')")
            .scalar<std::string>();
    });
    const auto deadline = std::chrono::steady_clock::now() + kSoon;
    while (queue.counts(session)["succeeded"] < 1 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    ASSERT_EQ(queue.counts(session)["succeeded"], 1);
    const Job job = queue.find(session, id).value();
    EXPECT_EQ(job.payload, "{\"n\": 2}");
    EXPECT_EQ(job.queue, "default");
    EXPECT_EQ(job.max_attempts, 5);
    EXPECT_EQ(id[14], '7') << "not a UUIDv7: " << id;
    sup.wait_for([&](const json& d) { return stat(d, "wake", "notifications_total") > heard; });

    // A unique key: the second call returns the first job, which is still waiting.
    auto delayed = [&] {
        return session.transact([](Session& s) {
            return s.execute("SELECT dbsup_enqueue('noop', run_at => now() + interval '1 hour', "
                             "unique_key => 'nightly')")
                .scalar<std::string>();
        });
    };
    const std::string held = delayed();
    EXPECT_EQ(delayed(), held);
    EXPECT_EQ(queue.counts(session)["available"], 1);

    EXPECT_THROW(session.transact([](Session& s) { s.execute("SELECT dbsup_enqueue('noop', '[1]')"); }),
                 Error);
    EXPECT_THROW(session.transact([](Session& s) { s.execute("SELECT dbsup_enqueue('1bad')"); }),
                 Error);
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
}

// The LISTEN connection killed, then the whole server restarted, while the
// fleet is idle: each time the waker listens again and a new job starts at once.
TEST(QueueWakeListener, ListensAgainAfterItsConnectionIsKilledAndPostgresRestarts) {
    OwnPostgres pg;
    ::setenv("DBSUP_OWN_PG_PASSWORD", pg.password().c_str(), 1);
    const std::string toml = "[databases.main]\nurl = \"" + pg.url() +
                             "\"\npassword_env = \"DBSUP_OWN_PG_PASSWORD\"\n"
                             "[queue]\npoll_interval_ms = 60000\n";
    DatabaseManager::instance().init_worker(ConfigLoader::load_string(toml, "test").databases,
                                            "wake-test");
    const Queue queue = Queue::from_config(ConfigLoader::load_string(toml, "test"));
    auto enqueue_and_wait = [&](std::int64_t n) {
        Session& s = DatabaseManager::instance().session("main");
        NewJob job;
        job.task = "noop";
        s.transact([&](Session& t) { queue.enqueue(t, job); });
        const auto deadline = std::chrono::steady_clock::now() + kSoon;
        while (queue.counts(s)["succeeded"] < n && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(10ms);
        return queue.counts(s)["succeeded"];
    };
    QueueSchema::migrate(DatabaseManager::instance().session("main"));
    TempDir dir;
    SupervisorProcess sup(dir, "", {"--workers", "2"}, {}, toml);
    sup.wait_for([](const json& d) { return d["wake"]["mode"] == "listen"; });
    EXPECT_EQ(enqueue_and_wait(1), 1);

    DatabaseManager::instance().transact("main", [](Session& s) {
        s.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE application_name = 'dbsupervisor/waker'");
    });
    // It reconnects at once; a job announced before that is found by the wake
    // that follows every reconnection.
    std::this_thread::sleep_for(300ms);
    sup.wait_for([](const json& d) { return d["wake"]["mode"] == "listen"; }, 10s);
    EXPECT_EQ(enqueue_and_wait(2), 2) << "not woken after the LISTEN connection was killed";

    pg.stop();
    pg.start();
    sup.wait_for([](const json& d) { return d["wake"]["mode"] == "listen"; }, 20s);
    std::this_thread::sleep_for(1s);  // the workers' pooled connections: found broken, replaced
    EXPECT_EQ(enqueue_and_wait(3), 3) << "not woken after PostgreSQL restarted";
    sup.signal(SIGTERM);
    EXPECT_EQ(sup.wait_exit(), 0);
    DatabaseManager::instance().close_worker();
}

}  // namespace
}  // namespace dbsup::test
