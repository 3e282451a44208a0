#include "supervisor/queue_keeper.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace dbsup
