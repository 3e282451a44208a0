#include "supervisor/queue_keeper.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <memory>
#include <thread>

#include "config/config_loader.hpp"
#include "shared/db/database_manager.hpp"
#include "shared/queue/queue_schema.hpp"
#include "tests/support/backend_test.hpp"

namespace dbsup {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(QueueKeeperTest, AQuickDepthCountIsReadAgainAfterASecond) {
    EXPECT_EQ(QueueKeeper::depth_wait(milliseconds(0)), seconds(1));
    EXPECT_EQ(QueueKeeper::depth_wait(milliseconds(15)), seconds(1));
}

// A table holding millions of finished jobs makes the count slow; the supervisor
// then counts less often instead of keeping the database busy counting.
TEST(QueueKeeperTest, ASlowDepthCountWaitsFiftyTimesItsDuration) {
    EXPECT_EQ(QueueKeeper::depth_wait(milliseconds(80)), seconds(4));
    EXPECT_EQ(QueueKeeper::depth_wait(seconds(2)), seconds(100));
}

// What a dead worker's threads marked in its slot decides which of its claims
// cost an attempt: the job a thread was running, every claim of a thread whose
// batch was on the server, none of an idle thread's.
TEST(QueueKeeperTest, StartedClaimsAreReadFromTheDeadWorkersRunnerMarks) {
    auto slot = std::make_unique<ShmWorkerSlot>();  // zeroed: every runner idle
    const std::string id = "0190f3a2-7b1c-7def-8abc-0123456789ab";
    slot->runners[0].start_job(id);
    slot->runners[2].start_batch();
    slot->runners[3].start_job("0190f3a2-7b1c-7def-8abc-000000000000");
    slot->runners[3].finish();
    slot->runners[255].start_job("torn");  // not a whole id: no job to name
    Queue::StartedClaims started = QueueKeeper::started_claims(*slot, "host:1:0:42");
    EXPECT_EQ(started.job_ids, std::vector<std::string>{id});
    EXPECT_EQ(started.batch_owners, std::vector<std::string>{"host:1:0:42/2"});
}

TEST(QueueKeeperTest, AnIdleWorkerStartedNothing) {
    auto slot = std::make_unique<ShmWorkerSlot>();
    Queue::StartedClaims started = QueueKeeper::started_claims(*slot, "host:1:0:42");
    EXPECT_TRUE(started.job_ids.empty());
    EXPECT_TRUE(started.batch_owners.empty());
}

// Taking back a dead worker's claims waits for the database when it must (the
// SQLite write lock, a PostgreSQL row lock): on the keeper's thread, never on
// the supervisor's loop, and tried again when it fails (SQLite's busy timeout
// is 100 ms here, shorter than the lock is held).
class QueueKeeperRelease : public test::BackendTest {
protected:
    void SetUp() override {
        databases_.drop_queue_tables(GetParam());
        std::string toml = databases_.toml(GetParam());
        if (GetParam() == test::TestBackend::sqlite)
            toml += "[databases.main.sqlite]\nbusy_timeout_ms = 100\n";
        config_ = ConfigLoader::load_string(toml, "queue_keeper_test");
        DatabaseManager::instance().init_worker(config_.databases, "queue-keeper-test");
        QueueSchema::migrate(session());
    }
    void TearDown() override { DatabaseManager::instance().close_worker(); }
    static Session& session() { return DatabaseManager::instance().session("main"); }
    std::string state_of(const std::string& id) { return queue_.find(session(), id)->state; }

    Config config_;
    Queue queue_{QueueConfig{}, {}};
};

// Two workers die while the database is locked: the first had started nothing,
// the second was running its job. Both are put back once it is free, together.
TEST_P(QueueKeeperRelease, ALockedDatabaseHoldsUpOnlyTheKeepersThread) {
    const pid_t dead_pid = 4242, running_pid = 4343;
    const auto me = static_cast<std::uint64_t>(getpid());
    const std::string worker = Queue::owner_id(me, 0, dead_pid);
    const std::string running_worker = Queue::owner_id(me, 1, running_pid);
    auto enqueue_and_claim = [&](const std::string& owner) {
        std::string job = session().transact([&](Session& s) {
            return queue_.enqueue(s, NewJob{"noop", "{}", "", 0, 0, 0, "", 0});
        });
        EXPECT_EQ(queue_.claim(session(), Queue::runner_owner(owner, 0), 1).at(0).id, job);
        return job;
    };
    const std::string id = enqueue_and_claim(worker);
    const std::string running_id = enqueue_and_claim(running_worker);

    QueueKeeper keeper(config_);
    std::promise<void> locked;
    std::atomic<bool> go{false}, let_go{false};
    std::thread holder([&] {
        Session s(make_pool(1, 0), "lock-holder");
        if (GetParam() == test::TestBackend::sqlite)
            s.begin(Connection::BeginMode::immediate);  // SQLite's one write lock
        else
            s.execute("SELECT id FROM dbsup_jobs FOR UPDATE");
        locked.set_value();
        const auto until = std::chrono::steady_clock::now() + seconds(3);
        while (!go && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(milliseconds(10));
        std::this_thread::sleep_for(milliseconds(1200));  // past a failed try and into the next
        s.rollback();
        let_go = true;
    });
    locked.get_future().wait();
    auto slot = std::make_unique<ShmWorkerSlot>();  // the worker had started nothing
    keeper.release_claims(0, dead_pid, *slot, "worker 4242 killed by signal 9");
    auto running_slot = std::make_unique<ShmWorkerSlot>();
    running_slot->runners[0].start_job(running_id);
    keeper.release_claims(1, running_pid, *running_slot, "worker 4343 killed by signal 9");
    EXPECT_FALSE(let_go) << "release_claims waited for the database";
    go = true;
    holder.join();

    auto deadline = std::chrono::steady_clock::now() + seconds(10);
    while (keeper.rescued_total() < 2 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(milliseconds(20));
    Job back = queue_.find(session(), id).value();
    EXPECT_EQ(back.state, "available");
    EXPECT_EQ(back.attempts, 0) << "an unstarted claim cost an attempt";
    Job charged = queue_.find(session(), running_id).value();
    EXPECT_EQ(charged.state, "available");
    EXPECT_EQ(charged.attempts, 1) << "the job it was running keeps its attempt";
    EXPECT_EQ(charged.last_error, "worker 4343 killed by signal 9");
    EXPECT_EQ(keeper.rescued_total(), 2u);
    // The keeper's thread counts the depth again each second on its own.
    deadline = std::chrono::steady_clock::now() + seconds(5);
    while (keeper.depth().value("available", -1) != 2 &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(milliseconds(20));
    EXPECT_EQ(keeper.depth().value("available", -1), 2) << keeper.depth().dump();
    EXPECT_EQ(keeper.final_depth().value("available", -1), 2);
}
DBSUP_BOTH_BACKENDS(QueueKeeperRelease);

}  // namespace
}  // namespace dbsup
