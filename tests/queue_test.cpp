// The queue's API on both backends: schema, enqueue, claim order, completion,
// retries to dead, release and rescue guards, transactional enqueue.
#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>

#include "shared/errors.hpp"
#include "shared/queue/queue.hpp"
#include "shared/queue/queue_schema.hpp"
#include "tests/support/backend_test.hpp"

namespace dbsup::test {
namespace {

NewJob job(std::string task, std::string payload = "{}", std::int64_t priority = 0,
           std::int64_t run_at_ms = 0) {
    NewJob j;
    j.task = std::move(task);
    j.payload = std::move(payload);
    j.priority = priority;
    j.run_at_ms = run_at_ms;
    return j;
}

class QueueTest : public BackendTest {
protected:
    void SetUp() override {
        databases_.drop_queue_tables(GetParam());
        pool_ = make_pool(2, 0);
        session_ = std::make_unique<Session>(pool_, "queue-test");
        QueueSchema::migrate(*session_);
    }
    Queue queue(std::int64_t lease_s = 60) {
        QueueConfig c;
        c.lease_s = lease_s;
        c.retry_base_ms = 0;  // retries are due at once in these tests
        c.retry_max_ms = 0;
        return Queue(c, {{"limited", 2}});
    }
    std::string enqueue(const Queue& q, NewJob job) {
        return session_->transact([&](Session& s) { return q.enqueue(s, job); });
    }
    /// A claim on a schema older than version 5, as the binary of its day made
    /// it: today's claim looks the queues table up, so it is there meanwhile.
    std::vector<Job> claim_before_version_5(const Queue& q, std::size_t n) {
        session_->transact([](Session& s) {
            s.execute("CREATE TABLE dbsup_queues (name TEXT PRIMARY KEY, paused INTEGER NOT NULL, "
                      "updated_at BIGINT NOT NULL)");
        });
        std::vector<Job> jobs = q.claim(*session_, "owner", n);
        session_->transact([](Session& s) { s.execute("DROP TABLE dbsup_queues"); });
        return jobs;
    }

    std::shared_ptr<ConnectionPool> pool_;
    std::unique_ptr<Session> session_;
};

TEST_P(QueueTest, MigrateIsIdempotentAndRefusesANewerSchema) {
    EXPECT_EQ(QueueSchema::migrate(*session_), QueueSchema::latest_version());
    EXPECT_EQ(QueueSchema::current_version(*session_), QueueSchema::latest_version());
    session_->transact([](Session& s) { s.execute("INSERT INTO dbsup_schema VALUES (99)"); });
    try {
        QueueSchema::migrate(*session_);
        FAIL() << "a newer schema was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("version 99, newer than this binary"),
                  std::string::npos)
            << e.what();
    }
}

// Version 2 rebuilds SQLite's table (a cheaper state check): an upgraded
// database keeps its jobs, their indexes, and still refuses a bad state.
TEST_P(QueueTest, UpgradingFromVersionOneKeepsEveryJob) {
    databases_.drop_queue_tables(GetParam());
    ASSERT_EQ(QueueSchema::migrate(*session_, 1), 1);
    Queue q = queue();
    std::string waiting = enqueue(q, job("noop", R"({"keep": "me"})"));
    std::string running = enqueue(q, job("noop"));
    ASSERT_EQ(claim_before_version_5(q, 1).at(0).id, waiting);
    EXPECT_EQ(QueueSchema::migrate(*session_), QueueSchema::latest_version());
    EXPECT_EQ(q.find(*session_, waiting)->state, "running");
    EXPECT_NE(q.find(*session_, waiting)->payload.find("keep"), std::string::npos);
    EXPECT_EQ(q.claim(*session_, "owner", 5).at(0).id, running) << "the claim index is gone";
    EXPECT_THROW(session_->transact([&](Session& s) {
        s.execute("UPDATE dbsup_jobs SET state = 'lost' WHERE id = $1", {waiting});
    }), Error);
    Result indexes = session_->transact([&](Session& s) {
        return s.execute(is_postgres(GetParam())
                             ? "SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'dbsup_jobs'"
                             : "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND "
                               "tbl_name = 'dbsup_jobs'");
    });
    EXPECT_EQ(indexes.scalar<std::int64_t>(), 6)
        << "the primary key, four partial indexes and the unique keys' one";
    if (GetParam() == TestBackend::sqlite) {
        Result plan = session_->transact([&](Session& s) {
            return s.execute("EXPLAIN UPDATE dbsup_jobs SET state = $1 WHERE id = $2",
                             {std::string("dead"), waiting});
        });
        for (const Row& op : plan.rows)
            EXPECT_NE(op.get<std::string>(1), "OpenEphemeral") << "the state check builds a b-tree";
    }
}

// Version 3 adds dbsup_enqueue() on PostgreSQL: jobs of every state are kept
// as they were, and jobs enqueued by the function are claimed like any other.
TEST_P(QueueTest, UpgradingFromVersionTwoKeepsEveryJobAndItsState) {
    databases_.drop_queue_tables(GetParam());
    ASSERT_EQ(QueueSchema::migrate(*session_, 2), 2);
    Queue q = queue();
    for (int i = 0; i < 4; ++i) enqueue(q, job("noop", "{\"i\": " + std::to_string(i) + "}"));
    std::vector<Job> claimed = claim_before_version_5(q, 3);
    ASSERT_EQ(claimed.size(), 3u);
    session_->transact([&](Session& s) { EXPECT_TRUE(q.complete(s, claimed[0], "owner")); });
    EXPECT_EQ(q.fail(*session_, claimed[1], "owner", "boom", true), Queue::Outcome::dead);
    // Read by hand: list() reads columns that later versions added.
    auto rows = [&] {
        return session_->transact([](Session& s) {
            return s.execute("SELECT id, state, attempts, payload, COALESCE(last_error, '') "
                             "FROM dbsup_jobs ORDER BY created_at DESC, id DESC");
        });
    };
    const Result before = rows();
    ASSERT_EQ(QueueSchema::migrate(*session_), QueueSchema::latest_version());
    auto after = q.list(*session_, "", "", 10);
    ASSERT_EQ(after.size(), before.size());
    for (std::size_t i = 0; i < after.size(); ++i) {
        const Row& was = before.rows[i];
        EXPECT_EQ(after[i].id, was.get<std::string>(0));
        EXPECT_EQ(after[i].state, was.get<std::string>(1));
        EXPECT_EQ(after[i].attempts, was.get<std::int64_t>(2));
        EXPECT_EQ(after[i].payload, was.get<std::string>(3));
        EXPECT_EQ(after[i].last_error, was.get<std::string>(4));
        EXPECT_FALSE(after[i].cancelled);
    }
    EXPECT_EQ(q.counts(*session_), (std::map<std::string, std::int64_t>{
                                       {"available", 1}, {"running", 1}, {"succeeded", 1}, {"dead", 1}}));
    if (GetParam() != TestBackend::postgresql) return;
    const std::string id = session_->transact([](Session& s) {
        return s.execute("SELECT dbsup_enqueue('noop', '{\"from\": \"sql\"}', priority => -1)")
            .scalar<std::string>();
    });
    EXPECT_EQ(q.claim(*session_, "owner", 1).at(0).id, id) << "priority -1 goes first";
}

TEST_P(QueueTest, CancelEndsAWaitingJobAndAsksARunningOnesWorker) {
    Queue q = queue();
    enqueue(q, job("noop"));
    enqueue(q, job("noop"));
    const std::string running = q.claim(*session_, "owner", 1).at(0).id;
    const std::string waiting = q.list(*session_, "available", "", 1).at(0).id;
    EXPECT_EQ(q.cancel(*session_, waiting), Queue::Cancel::cancelled);
    EXPECT_EQ(q.find(*session_, waiting)->state, "dead");
    EXPECT_TRUE(q.find(*session_, waiting)->cancelled);
    EXPECT_TRUE(q.cancel_requested(*session_, {running}).empty());
    EXPECT_EQ(q.cancel(*session_, running), Queue::Cancel::requested);
    EXPECT_EQ(q.find(*session_, running)->state, "running");  // its worker ends it
    EXPECT_EQ(q.cancel_requested(*session_, {running}), std::vector<std::string>{running});
    EXPECT_EQ(q.cancel(*session_, running), Queue::Cancel::none);  // asked once
    EXPECT_TRUE(q.retry(*session_, waiting));
    EXPECT_FALSE(q.find(*session_, waiting)->cancelled) << "a retried job is not cancelled";
}

TEST_P(QueueTest, EnqueueClaimCompleteRoundTrip) {
    Queue q = queue();
    std::string id = enqueue(q, job("noop", R"({"x": 1})"));
    std::vector<Job> claimed = q.claim(*session_, "owner-a", 10);
    ASSERT_EQ(claimed.size(), 1u);
    EXPECT_EQ(claimed[0].id, id);
    EXPECT_EQ(claimed[0].attempts, 1);
    EXPECT_EQ(claimed[0].max_attempts, 5);
    EXPECT_TRUE(q.claim(*session_, "owner-b", 10).empty()) << "a running job was claimed twice";
    EXPECT_FALSE(session_->transact([&](Session& s) { return q.complete(s, claimed[0], "owner-b"); }))
        << "another owner completed the job";
    EXPECT_TRUE(session_->transact([&](Session& s) { return q.complete(s, claimed[0], "owner-a"); }));
    EXPECT_EQ(q.find(*session_, id)->state, "succeeded");
    EXPECT_EQ(q.counts(*session_).at("succeeded"), 1);
}

TEST_P(QueueTest, PriorityThenRunAtDecideTheOrderAndFutureJobsWait) {
    Queue q = queue();
    std::string later = enqueue(q, job("noop", "{}", 0, Queue::now_ms() + 60'000));
    std::string low = enqueue(q, job("noop", "{}", 5));
    std::string high = enqueue(q, job("noop", "{}", -1));
    std::string normal = enqueue(q, job("noop"));
    std::vector<Job> claimed = q.claim(*session_, "o", 10);
    ASSERT_EQ(claimed.size(), 3u) << "a job whose run_at is in the future was claimed";
    EXPECT_EQ(claimed[0].id, high);
    EXPECT_EQ(claimed[1].id, normal);
    EXPECT_EQ(claimed[2].id, low);
    EXPECT_EQ(q.find(*session_, later)->state, "available");
}

TEST_P(QueueTest, ClaimTakesAtMostTheBatch) {
    Queue q = queue();
    for (int i = 0; i < 7; ++i) enqueue(q, job("noop"));
    EXPECT_EQ(q.claim(*session_, "o", 3).size(), 3u);
    EXPECT_EQ(q.claim(*session_, "o", 10).size(), 4u);
}

// Retention empties the table and (auto)analyze records it as empty; the
// connection's cached claim plan was made then. A burst after that must be
// claimed a batch at a time (a plan that re-ran the locking pick per row of
// the table claimed the whole burst in one go, taking minutes to do it).
TEST_P(QueueTest, ClaimsStayBoundedAfterTheTableWasAnalyzedEmpty) {
    Queue q = queue();
    session_->transact([](Session& s) { s.execute("ANALYZE dbsup_jobs"); });
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(q.claim(*session_, "o", 32).empty());
    std::vector<NewJob> burst(3000, job("noop"));
    session_->transact([&](Session& s) { q.enqueue_many(s, burst); });
    std::size_t claimed = 0;
    for (int i = 0; i < 8; ++i) {
        std::size_t n = q.claim(*session_, "o", 32).size();
        ASSERT_EQ(n, 32u) << "claim " << i;
        claimed += n;
    }
    EXPECT_EQ(q.counts(*session_).at("running"), static_cast<std::int64_t>(claimed));
}

// Dead (and cancelled) jobs have their own retention; 0 keeps them. A batch
// holds both outcomes' deletions, never more than its bound.
TEST_P(QueueTest, DeadJobsArePrunedAfterTheirOwnRetention) {
    QueueConfig c;
    c.retention_s = 60;
    c.dead_retention_s = 3600;
    std::vector<NewJob> jobs(6, job("noop"));
    session_->transact([&](Session& s) { Queue(c, {}).enqueue_many(s, jobs); });
    session_->transact([&](Session& s) {
        s.execute("UPDATE dbsup_jobs SET state = 'succeeded', finished_at = $1 WHERE id IN "
                  "(SELECT id FROM dbsup_jobs ORDER BY id LIMIT 2)",
                  {Queue::now_ms() - 120'000});
        s.execute("UPDATE dbsup_jobs SET state = 'dead', finished_at = $1 WHERE state = 'available' "
                  "AND id IN (SELECT id FROM dbsup_jobs WHERE state = 'available' ORDER BY id "
                  "LIMIT 3)",
                  {Queue::now_ms() - 2 * 3600'000});  // older than an hour
        s.execute("UPDATE dbsup_jobs SET state = 'dead', finished_at = $1 WHERE state = "
                  "'available'",
                  {Queue::now_ms() - 120'000});  // a dead one of two minutes: kept
    });
    c.dead_retention_s = 0;
    EXPECT_EQ(Queue(c, {}).prune(*session_, 1000), 2u) << "dead_retention_s = 0 keeps dead jobs";
    c.dead_retention_s = 3600;
    EXPECT_EQ(Queue(c, {}).prune(*session_, 2), 2u) << "the batch bound holds across outcomes";
    EXPECT_EQ(Queue(c, {}).prune(*session_, 1000), 1u);
    auto counts = Queue(c, {}).counts(*session_);
    EXPECT_EQ(counts.at("dead"), 1);
    EXPECT_EQ(counts.at("succeeded"), 0);
}

// The age of the oldest due waiting job, per queue; a job not due yet waits for nothing.
TEST_P(QueueTest, TheOldestWaitingJobsAgeIsMeasuredPerQueue) {
    Queue q = queue();
    NewJob a = job("noop", "{}", 0, Queue::now_ms() - 5000);
    NewJob b = job("noop", "{}", 0, Queue::now_ms() + 60'000);
    b.queue = "later";
    enqueue(q, a);
    enqueue(q, b);
    auto ages = q.oldest_waiting_seconds(*session_);
    ASSERT_EQ(ages.size(), 1u);
    EXPECT_GE(ages.at("default"), 4.5);
    EXPECT_LT(ages.at("default"), 60.0);
    const nlohmann::json table = q.table_stats(*session_);
    if (is_postgres(GetParam())) {
        EXPECT_GT(table.at("bytes").get<std::int64_t>(), 0);
        EXPECT_GE(table.at("dead_tuples").get<std::int64_t>(), 0);
    } else {
        EXPECT_TRUE(table.empty());
    }
}

// Retention deletes old succeeded jobs a bounded batch per transaction, and
// only those: waiting, running, dead and recent ones stay.
TEST_P(QueueTest, PruneDeletesOldSucceededJobsABatchAtATime) {
    QueueConfig c;
    c.retention_s = 60;
    Queue q(c, {});
    std::vector<NewJob> old(2500, job("noop"));
    session_->transact([&](Session& s) { q.enqueue_many(s, old); });
    enqueue(q, job("noop"));  // stays available
    session_->transact([&](Session& s) {
        s.execute("UPDATE dbsup_jobs SET state = 'succeeded', finished_at = $1 WHERE id IN "
                  "(SELECT id FROM dbsup_jobs ORDER BY id LIMIT 2500)",
                  {Queue::now_ms() - 120'000});
        s.execute("UPDATE dbsup_jobs SET finished_at = $1 WHERE id IN (SELECT id FROM dbsup_jobs "
                  "WHERE state = 'succeeded' ORDER BY id LIMIT 1)",
                  {Queue::now_ms()});  // recent: kept
    });
    EXPECT_EQ(q.prune(*session_, 1000), 1000u);
    EXPECT_EQ(q.prune(*session_, 1000), 1000u);
    EXPECT_EQ(q.prune(*session_, 1000), 499u);
    EXPECT_EQ(q.prune(*session_, 1000), 0u);
    auto counts = q.counts(*session_);
    EXPECT_EQ(counts.at("succeeded"), 1);
    EXPECT_EQ(counts.at("available"), 1);
}

TEST_P(QueueTest, FailuresRetryThenGoDeadWithTheLastError) {
    Queue q = queue();
    std::string id = enqueue(q, job("limited"));  // max_attempts 2 from the task
    Job first = q.claim(*session_, "o", 1).at(0);
    EXPECT_EQ(q.fail(*session_, first, "o", "boom 1", false), Queue::Outcome::retried);
    Job second = q.claim(*session_, "o", 1).at(0);
    EXPECT_EQ(second.attempts, 2);
    EXPECT_EQ(q.fail(*session_, second, "o", "boom 2", false), Queue::Outcome::dead);
    Job dead = q.find(*session_, id).value();
    EXPECT_EQ(dead.state, "dead");
    EXPECT_EQ(dead.last_error, "boom 2");
    EXPECT_NE(dead.finished_at_ms, 0);
    EXPECT_EQ(q.retry_all_dead(*session_), 1u);
    EXPECT_EQ(q.find(*session_, id)->state, "available");
}

TEST_P(QueueTest, APermanentFailureIsDeadAtOnce) {
    Queue q = queue();
    std::string id = enqueue(q, job("noop"));
    Job job = q.claim(*session_, "o", 1).at(0);
    EXPECT_EQ(q.fail(*session_, job, "o", "unknown task", true), Queue::Outcome::dead);
    EXPECT_EQ(q.find(*session_, id)->attempts, 1);
}

// Names reach logs, stats keys and Prometheus labels: only the config's rule.
TEST_P(QueueTest, EnqueueRefusesBadTaskAndQueueNamesAndOversizedPayloads) {
    Queue q = queue();
    for (const std::string& bad : {std::string(""), std::string("a\"b"), std::string("x\ny"),
                                  std::string("\xC3\xA9t\xC3\xA9"), std::string(64, 'a'),
                                  std::string("9lives")}) {
        EXPECT_THROW(enqueue(q, job(bad)), Error) << bad;
    }
    NewJob elsewhere = job("noop");
    elsewhere.queue = "mail box";
    EXPECT_THROW(enqueue(q, elsewhere), Error);
    QueueConfig small;
    small.max_payload_bytes = 64;
    Queue limited(small, {});
    enqueue(limited, job("noop", "{\"a\": \"" + std::string(40, 'x') + "\"}"));
    try {
        enqueue(limited, job("noop", "{\"a\": \"" + std::string(80, 'x') + "\"}"));
        FAIL() << "an oversized payload was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("more than [queue] max_payload_bytes (64)"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_EQ(q.counts(*session_).at("available"), 1);
}

TEST_P(QueueTest, BackoffGrowsWithAttemptsAndStaysUnderTheCap) {
    QueueConfig c;
    c.retry_base_ms = 100;
    c.retry_max_ms = 1000;
    Queue q(c, {});
    std::int64_t max_seen = 0;
    for (int i = 0; i < 2000; ++i) {
        std::int64_t d = q.retry_delay_ms(3);  // ceiling 400
        EXPECT_GE(d, 0);
        EXPECT_LE(d, 400);
        max_seen = std::max(max_seen, d);
        EXPECT_LE(q.retry_delay_ms(30), 1000);
    }
    EXPECT_GT(max_seen, 300) << "full jitter should reach near its ceiling";
}

TEST_P(QueueTest, AnInjectionPayloadIsStoredAsData) {
    Queue q = queue();
    const std::string payload = R"({"kind": "x'); DROP TABLE events; --"})";
    std::string id = enqueue(q, job("noop", payload));
    Job job = q.find(*session_, id).value();
    EXPECT_NE(job.payload.find("x'); DROP TABLE events; --"), std::string::npos) << job.payload;
    EXPECT_EQ(q.counts(*session_).at("available"), 1);
}

TEST_P(QueueTest, ANonObjectPayloadIsRefused) {
    Queue q = queue();
    EXPECT_THROW(enqueue(q, job("noop", "[1, 2]")), Error);
    EXPECT_THROW(enqueue(q, job("noop", "not json")), Error);
}

TEST_P(QueueTest, ReleaseGivesJobsBackWithoutCountingAnAttempt) {
    Queue q = queue();
    std::string id = enqueue(q, job("noop"));
    std::vector<Job> claimed = q.claim(*session_, "o", 1);
    EXPECT_EQ(q.release(*session_, claimed, "someone-else"), 0u);
    EXPECT_EQ(q.release(*session_, claimed, "o"), 1u);
    Job job = q.find(*session_, id).value();
    EXPECT_EQ(job.state, "available");
    EXPECT_EQ(job.attempts, 0);
}

// One statement gives back the listed claims, and only those.
TEST_P(QueueTest, ReleaseGivesBackExactlyTheListedJobs) {
    Queue q = queue();
    for (int i = 0; i < 3; ++i) enqueue(q, job("noop"));
    std::vector<Job> claimed = q.claim(*session_, "o", 3);
    ASSERT_EQ(claimed.size(), 3u);
    const Job kept = claimed.back();
    claimed.pop_back();
    EXPECT_EQ(q.release(*session_, claimed, "o"), 2u);
    for (const Job& j : claimed) EXPECT_EQ(q.find(*session_, j.id)->state, "available");
    EXPECT_EQ(q.find(*session_, kept.id)->state, "running");
}

TEST_P(QueueTest, AnExpiredLeaseIsRescuedAndTheLateOwnerCannotComplete) {
    Queue q = queue(1);
    std::string id = enqueue(q, job("noop"));
    Job job = q.claim(*session_, "hung", 1).at(0);
    EXPECT_EQ(q.rescue_expired(*session_), 0u) << "a live lease was taken back";
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    EXPECT_EQ(q.rescue_expired(*session_), 1u);
    EXPECT_EQ(q.find(*session_, id)->state, "available");
    EXPECT_FALSE(session_->transact([&](Session& s) { return q.complete(s, job, "hung"); }));
    EXPECT_EQ(q.fail(*session_, job, "hung", "late", false), Queue::Outcome::lost);
}

TEST_P(QueueTest, RenewKeepsTheLeasesOfTheGivenJobsAlive) {
    Queue q = queue(1);
    enqueue(q, job("noop"));
    enqueue(q, job("noop"));
    std::vector<Job> claimed = q.claim(*session_, Queue::runner_owner("alive", 3), 2);
    ASSERT_EQ(claimed.size(), 2u);
    for (int i = 0; i < 3; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        EXPECT_EQ(q.renew(*session_, "alive", {claimed[0].id}), 1u);
        EXPECT_EQ(q.renew(*session_, "someone-else", {claimed[0].id}), 0u);
        EXPECT_EQ(q.renew(*session_, "aliv", {claimed[0].id}), 0u) << "a prefix of another worker";
    }
    // The job the worker gave up on was not renewed: it expired.
    EXPECT_EQ(q.rescue_expired(*session_), 1u);
    EXPECT_EQ(q.find(*session_, claimed[1].id)->state, "available");
    EXPECT_EQ(q.find(*session_, claimed[0].id)->state, "running");
}

TEST_P(QueueTest, ADeadWorkersStartedJobsCountTheirAttemptAndTheRestGoBackUntouched) {
    Queue q = queue();
    // Priorities decide who claims what: thread 0 the first three, thread 1
    // the limited job and two more, the other worker the last.
    for (int i = 0; i < 3; ++i) enqueue(q, job("noop", "{}", 0));
    std::string limited = enqueue(q, job("limited", "{}", 1));
    for (int i = 0; i < 2; ++i) enqueue(q, job("noop", "{}", 2));
    enqueue(q, job("noop", "{}", 3));
    std::vector<Job> one = q.claim(*session_, Queue::runner_owner("dead", 0), 3);
    std::vector<Job> two = q.claim(*session_, Queue::runner_owner("dead", 1), 3);
    std::vector<Job> other = q.claim(*session_, Queue::runner_owner("dead-2", 0), 1);
    ASSERT_EQ(one.size() + two.size() + other.size(), 7u);
    session_->transact([&](Session& s) {  // the limited job is on its last attempt
        s.execute("UPDATE dbsup_jobs SET attempts = 2 WHERE id = $1", {limited});
    });
    // Thread 0 was running one[1]; thread 1's whole batch was on the server.
    Queue::StartedClaims started{{one[1].id}, {Queue::runner_owner("dead", 1)}};
    Queue::TakenBack n = q.release_workers(*session_, {{"dead", started, "worker died"}}).at(0);
    EXPECT_EQ(n.charged, 4u);
    EXPECT_EQ(n.released, 2u);
    for (const Job* j : {&one[0], &one[2]}) {
        Job now = q.find(*session_, j->id).value();
        EXPECT_EQ(now.state, "available");
        EXPECT_EQ(now.attempts, 0) << "an unstarted claim cost an attempt";
        EXPECT_EQ(now.last_error, "");
    }
    Job running = q.find(*session_, one[1].id).value();
    EXPECT_EQ(running.state, "available");
    EXPECT_EQ(running.attempts, 1);
    EXPECT_EQ(running.last_error, "worker died");
    auto counts = q.counts(*session_);
    EXPECT_EQ(q.find(*session_, limited)->state, "dead") << "out of attempts";
    EXPECT_EQ(counts.at("running"), 1) << "another worker's claim was touched";
    EXPECT_EQ(q.find(*session_, other[0].id)->state, "running");
}

// Workers that died together go back in one call: each is charged only for
// the jobs it had started, with its own reason, and reported in order.
TEST_P(QueueTest, SeveralDeadWorkersAreTakenBackTogetherEachWithItsOwnCount) {
    Queue q = queue();
    for (int i = 0; i < 3; ++i) enqueue(q, job("noop"));
    std::vector<Job> idle = q.claim(*session_, Queue::runner_owner("idle", 0), 2);
    std::vector<Job> busy = q.claim(*session_, Queue::runner_owner("busy", 0), 1);
    ASSERT_EQ(idle.size() + busy.size(), 3u);
    std::vector<Queue::TakenBack> taken = q.release_workers(
        *session_, {{"idle", {}, "idle died"}, {"busy", {{busy[0].id}, {}}, "busy died"}});
    ASSERT_EQ(taken.size(), 2u);
    EXPECT_EQ(taken[0].charged, 0u);
    EXPECT_EQ(taken[0].released, 2u);
    EXPECT_EQ(taken[1].charged, 1u);
    EXPECT_EQ(taken[1].released, 0u);
    for (const Job& j : idle) EXPECT_EQ(q.find(*session_, j.id)->attempts, 0);
    Job charged = q.find(*session_, busy[0].id).value();
    EXPECT_EQ(charged.state, "available");
    EXPECT_EQ(charged.attempts, 1);
    EXPECT_EQ(charged.last_error, "busy died");
}

// Owner names carry the host name; whatever it holds (a tab, quotes), the list
// of owners bound as one value (a PostgreSQL array literal, a JSON array) names
// it exactly.
TEST_P(QueueTest, AnOwnerNameWithQuotesBracesAndCommasIsMatchedExactly) {
    Queue q = queue();
    enqueue(q, job("noop"));
    const std::string worker = "odd\t\"host\\,{x}:1:0:7";
    q.claim(*session_, Queue::runner_owner(worker, 0), 1);
    Queue::StartedClaims started{{}, {Queue::runner_owner(worker, 0)}};
    Queue::TakenBack n = q.release_workers(*session_, {{worker, started, "worker died"}}).at(0);
    EXPECT_EQ(n.charged, 1u);
    EXPECT_EQ(n.released, 0u);
}

TEST_P(QueueTest, EnqueueIsPartOfTheCallersTransaction) {
    Queue q = queue();
    EXPECT_THROW(session_->transact([&](Session& s) {
        q.enqueue(s, job("noop"));
        throw std::runtime_error("the caller's work failed");
    }),
                 std::runtime_error);
    EXPECT_EQ(q.counts(*session_).at("available"), 0);
}

TEST_P(QueueTest, EnqueueManyInsertsEveryJobWithItsPayload) {
    Queue q = queue();
    std::vector<NewJob> jobs;
    for (int i = 0; i < 12'345; ++i) jobs.push_back(job("noop", "{\"i\": " + std::to_string(i) + "}"));
    auto ids = session_->transact([&](Session& s) { return q.enqueue_many(s, jobs); });
    EXPECT_EQ(ids.size(), jobs.size());
    EXPECT_EQ(q.counts(*session_).at("available"), 12'345);
    EXPECT_NE(q.find(*session_, ids[777])->payload.find("777"), std::string::npos);
}

// 100 enqueues of one key from 10 threads, each with a session of its own:
// one job, and every caller gets its id.
TEST_P(QueueTest, ConcurrentEnqueuesOfOneUniqueKeyMakeOneJob) {
    const Queue q = queue();
    std::mutex mutex;
    std::set<std::string> ids;
    int added = 0;
    std::vector<std::string> errors;
    std::vector<std::thread> threads;
    for (int t = 0; t < 10; ++t)
        threads.emplace_back([&] {
            Session s(make_pool(1, 0), "unique");
            NewJob j = job("noop");
            j.unique_key = "report:2026-12-01";
            for (int i = 0; i < 10; ++i) {
                try {
                    Enqueued e = s.transact([&](Session& x) { return q.enqueue_unique(x, j); });
                    std::lock_guard lock(mutex);
                    ids.insert(e.id);
                    added += e.duplicate ? 0 : 1;
                } catch (const std::exception& e) {
                    std::lock_guard lock(mutex);
                    errors.push_back(e.what());
                }
            }
        });
    for (auto& t : threads) t.join();
    ASSERT_TRUE(errors.empty()) << errors.front();
    EXPECT_EQ(ids.size(), 1u);
    EXPECT_EQ(added, 1);
    EXPECT_EQ(q.counts(*session_)["available"], 1);
}

// The key is free again once its job finished, unless unique_for covers a
// recent success; a job without a key is never held back.
TEST_P(QueueTest, AUniqueKeyIsHeldWhileWaitingAndRunningAndForUniqueForAfter) {
    const Queue q = queue();
    NewJob j = job("noop");
    j.unique_key = "sync:42";
    auto add = [&](const NewJob& n) {
        return session_->transact([&](Session& s) { return q.enqueue_unique(s, n); });
    };
    const Enqueued first = add(j);
    EXPECT_FALSE(first.duplicate);
    EXPECT_EQ(add(j).id, first.id);
    EXPECT_TRUE(add(j).duplicate);
    std::vector<Job> claimed = q.claim(*session_, "w:1/0", 10);
    ASSERT_EQ(claimed.size(), 1u);
    EXPECT_EQ(add(j).id, first.id) << "a running job holds its key";
    session_->transact([&](Session& s) { q.complete(s, claimed[0], "w:1/0"); });
    j.unique_for_ms = 600000;
    EXPECT_EQ(add(j).id, first.id) << "succeeded within unique_for";
    EXPECT_EQ(q.counts(*session_)["available"], 0) << "the duplicate's row was not left behind";
    j.unique_for_ms = 0;
    const Enqueued second = add(j);
    EXPECT_FALSE(second.duplicate);
    EXPECT_NE(second.id, first.id);
    std::vector<NewJob> batch(3, job("noop"));
    batch[1].unique_key = "sync:42";
    auto ids = session_->transact([&](Session& s) { return q.enqueue_many(s, batch); });
    EXPECT_EQ(ids[1], second.id);
    EXPECT_EQ(q.counts(*session_)["available"], 3);
    j.unique_key = std::string(513, 'k');
    EXPECT_THROW(add(j), Error);
}

DBSUP_ALL_BACKENDS(QueueTest);

// On PostgreSQL one pruner at a time: a second one skips its turn at once
// instead of waiting for the first one's rows. (SQLite has one writer anyway.)
TEST(QueuePrune, ASecondPrunerOnPostgresSkipsItsTurn) {
    TestDatabases databases;
    databases.drop_queue_tables(TestBackend::postgresql);
    auto pool = databases.pool(TestBackend::postgresql, PoolOptions{});
    Session session(pool, "pruner");
    QueueSchema::migrate(session);
    QueueConfig c;
    c.retention_s = 0;
    Queue q(c, {});
    session.transact([&](Session& s) { q.enqueue(s, job("noop")); });
    session.transact([](Session& s) {
        s.execute("UPDATE dbsup_jobs SET state = 'succeeded', finished_at = 0");
    });
    Session other(pool, "other-pruner");
    other.begin();
    ASSERT_TRUE(other.execute("SELECT pg_try_advisory_xact_lock(7291846)").scalar<bool>());
    EXPECT_EQ(q.prune(session, 1000), 0u);
    other.rollback();
    EXPECT_EQ(q.prune(session, 1000), 1u);
}

}  // namespace
}  // namespace dbsup::test
