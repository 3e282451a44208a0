// Schedules end to end, with the real binary: two supervisors on one database
// run a schedule firing every second, and each firing becomes one job; after
// both were down a while, a restart with catch_up = "last" enqueues only the
// latest missed firing. `dbsupervisor schedules` shows the last and next.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "shared/clock.hpp"
#include "shared/queue/queue.hpp"
#include "shared/queue/queue_schema.hpp"
#include "tests/support/backend_test.hpp"
#include "tests/support/supervisor_process.hpp"

namespace dbsup::test {
namespace {

using json = nlohmann::json;

class ScheduleE2E : public BackendTest {
protected:
    void SetUp() override {
        databases_.drop_queue_tables(GetParam());
        session_ = std::make_unique<Session>(databases_.pool(GetParam(), PoolOptions{}), "e2e");
        QueueSchema::migrate(*session_);
    }
    /// The firing times of the scheduled jobs, ascending.
    std::vector<std::int64_t> firings() {
        std::vector<std::int64_t> out;
        session_->transact([&](Session& s) {
            Result r = s.execute("SELECT unique_key FROM dbsup_jobs WHERE task = 'ping'");
            for (const Row& row : r.rows) {
                const std::string key = row.get<std::string>(0);
                out.push_back(std::stoll(key.substr(key.rfind(':') + 1)));
            }
        });
        std::sort(out.begin(), out.end());
        return out;
    }
    std::string toml() const {
        return databases_.toml(GetParam()) +
               "[tasks.ping]\nsql = \"SELECT 1\"\n"
               "[schedules.tick]\nevery = \"1s\"\ntask = \"ping\"\ncatch_up = \"last\"\n";
    }
    static int enqueued(const SupervisorProcess& sup) {
        const json doc = sup.stats();
        if (doc.is_null() || doc.is_discarded()) return -1;
        return doc["schedules"]["tick"]["enqueued_total"].get<int>();
    }
    std::unique_ptr<Session> session_;
};

TEST_P(ScheduleE2E, TwoSupervisorsEnqueueEachFiringOnceAndARestartCatchesUpTheLast) {
    TempDir dir;
    int total = 0;
    {
        SupervisorProcess a(dir, "", {"--workers", "1"}, {}, toml(), "a");
        SupervisorProcess b(dir, "", {"--workers", "1"}, {}, toml(), "b");
        std::this_thread::sleep_for(20s);
        const int by_a = enqueued(a), by_b = enqueued(b);  // read while both still run
        a.signal(SIGTERM);
        b.signal(SIGTERM);
        EXPECT_EQ(a.wait_exit(), 0);
        EXPECT_EQ(b.wait_exit(), 0);
        total = enqueued(a) + enqueued(b);
        EXPECT_GE(by_a + by_b, 18);
    }
    const std::vector<std::int64_t> before = firings();
    ASSERT_GE(before.size(), 18u);
    EXPECT_EQ(static_cast<int>(before.size()), total) << "the stats disagree with the table";
    for (std::size_t i = 1; i < before.size(); ++i)
        ASSERT_EQ(before[i] - before[i - 1], 1000) << "a firing missing or doubled at " << i;

    std::this_thread::sleep_for(3500ms);  // everything down: at least three firings pass
    SupervisorProcess again(dir, "", {"--workers", "1"}, {}, toml(), "again");
    again.wait_for([](const json& doc) {
        return doc["schedules"]["tick"]["enqueued_total"].get<int>() >= 2;
    });
    again.signal(SIGTERM);
    EXPECT_EQ(again.wait_exit(), 0);
    const std::vector<std::int64_t> all = firings();
    ASSERT_GT(all.size(), before.size());
    const std::int64_t caught_up = all[before.size()];
    // Only the latest of the missed firings: at least two skipped before it.
    EXPECT_GE(caught_up - before.back(), 3000) << "more than the last missed firing enqueued";
    for (std::size_t i = before.size() + 1; i < all.size(); ++i)
        EXPECT_EQ(all[i] - all[i - 1], 1000) << "after the restart, at " << i;

    const CommandRun listed =
        run_command("-c " + (dir.path() / "again.toml").string() + " schedules --json");
    ASSERT_EQ(listed.exit_code, 0) << listed.output;
    const json rows = json::parse(listed.output);
    ASSERT_EQ(rows.size(), 1u) << listed.output;
    EXPECT_EQ(rows[0]["name"], "tick");
    EXPECT_EQ(rows[0]["schedule"], "every 1s");
    EXPECT_EQ(rows[0]["last"], utc_text(all.back()));
    EXPECT_FALSE(rows[0]["next"].is_null());
}

DBSUP_BOTH_BACKENDS(ScheduleE2E);

}  // namespace
}  // namespace dbsup::test
