#include "supervisor/queue_keeper.hpp"

#include <gtest/gtest.h>

#include <memory>

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

}  // namespace
}  // namespace dbsup
