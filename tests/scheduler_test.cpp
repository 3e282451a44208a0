// Schedules against a real database: a firing is enqueued once however many
// schedulers handle it at the same moment, never for the time before the
// schedule existed, and missed firings are enqueued as catch_up says.
#include <gtest/gtest.h>

#include <thread>

#include "shared/queue/queue.hpp"
#include "shared/queue/queue_schema.hpp"
#include "supervisor/scheduler.hpp"
#include "tests/support/backend_test.hpp"

namespace dbsup::test {
namespace {

constexpr std::int64_t kBase = 1'800'000'000'000;  // a whole second, 2027

Config with_schedule(const std::string& catch_up, std::int64_t every_ms = 1000) {
    Config config;
    ScheduleConfig s;
    s.name = "tick";
    s.task = "ping";
    s.payload = R"({"from":"schedule"})";
    s.every_ms = every_ms;
    s.catch_up = catch_up;
    config.schedules["tick"] = s;
    return config;
}

class SchedulerTest : public BackendTest {
protected:
    void SetUp() override {
        databases_.drop_queue_tables(GetParam());
        pool_ = make_pool(3, 0);
        session_ = std::make_unique<Session>(pool_, "scheduler-test");
        QueueSchema::migrate(*session_);
    }
    /// The keys of the jobs enqueued, in firing order.
    std::vector<std::string> keys() {
        std::vector<std::string> out;
        session_->transact([&](Session& s) {
            Result r = s.execute("SELECT unique_key FROM dbsup_jobs ORDER BY run_at");
            for (const Row& row : r.rows) out.push_back(row.get<std::string>(0));
        });
        return out;
    }
    static std::string key(std::int64_t at) {
        return std::string("schedule:tick:").append(std::to_string(at));
    }

    std::shared_ptr<ConnectionPool> pool_;
    std::unique_ptr<Session> session_;
};

TEST_P(SchedulerTest, FiresFromWhenItWasFirstSeenNotForThePast) {
    Scheduler scheduler(with_schedule("all"), false);
    EXPECT_EQ(scheduler.fire_due(*session_, kBase + 500), 0u);  // first seen: nothing owed
    EXPECT_EQ(scheduler.next_due(), kBase + 1000);
    EXPECT_EQ(scheduler.fire_due(*session_, kBase + 900), 0u);  // not due yet
    EXPECT_EQ(scheduler.fire_due(*session_, kBase + 1000), 1u);
    EXPECT_EQ(keys(), std::vector<std::string>{key(kBase + 1000)});
    Result job = session_->transact([](Session& s) {
        return s.execute("SELECT task, queue, run_at, state FROM dbsup_jobs");
    });
    EXPECT_EQ(job.rows.at(0).get<std::string>(0), "ping");
    EXPECT_EQ(job.rows.at(0).get<std::string>(1), "default");
    EXPECT_EQ(job.rows.at(0).get<std::int64_t>(2), kBase + 1000);  // due at its firing
    EXPECT_EQ(job.rows.at(0).get<std::string>(3), "available");
    EXPECT_EQ(scheduler.stats()["tick"]["enqueued_total"], 1);
}

// Two supervisors' schedulers, each with its own connection, handle the same
// 40 firings at the same moments: each firing becomes exactly one job.
TEST_P(SchedulerTest, TwoSchedulersEnqueueEachFiringOnce) {
    Scheduler first(with_schedule("last"), false), second(with_schedule("last"), false);
    first.fire_due(*session_, kBase);  // the schedule is seen at kBase by both
    auto run = [&](Scheduler& scheduler) {
        Session session(pool_, "scheduler");
        for (std::int64_t i = 1; i <= 40; ++i) scheduler.fire_due(session, kBase + i * 1000);
    };
    std::thread a([&] { run(first); }), b([&] { run(second); });
    a.join();
    b.join();
    std::vector<std::string> expected;
    for (std::int64_t i = 1; i <= 40; ++i) expected.push_back(key(kBase + i * 1000));
    EXPECT_EQ(keys(), expected);
    EXPECT_EQ(first.stats()["tick"]["enqueued_total"].get<int>() +
                  second.stats()["tick"]["enqueued_total"].get<int>(),
              40);
}

struct CatchUpCase {
    const char* mode;
    std::int64_t now_offset;
    std::vector<std::int64_t> fired;  // offsets from kBase
};

// Down from kBase to kBase + 10.7 s: firings at +1 s ... +10 s were missed.
TEST_P(SchedulerTest, MissedFiringsFollowCatchUp) {
    const std::vector<CatchUpCase> cases = {
        {"all", 10'700, {1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10'000}},
        {"last", 10'700, {10'000}},
        {"none", 10'700, {}},          // 700 ms late: over half the period, skipped
        {"none", 10'300, {10'000}},    // 300 ms late: on time
    };
    for (const CatchUpCase& c : cases) {
        session_->transact([](Session& s) {
            s.execute("DELETE FROM dbsup_jobs");
            s.execute("DELETE FROM dbsup_schedules");
        });
        Scheduler before(with_schedule(c.mode), false);
        before.fire_due(*session_, kBase);
        Scheduler after_restart(with_schedule(c.mode), false);
        after_restart.fire_due(*session_, kBase + c.now_offset);
        std::vector<std::string> expected;
        for (std::int64_t at : c.fired) expected.push_back(key(kBase + at));
        EXPECT_EQ(keys(), expected) << c.mode << " at +" << c.now_offset;
        // The mark moved past the missed firings either way: nothing is owed twice.
        EXPECT_EQ(after_restart.fire_due(*session_, kBase + c.now_offset + 100), 0u);
    }
}

DBSUP_ALL_BACKENDS(SchedulerTest);

}  // namespace
}  // namespace dbsup::test
