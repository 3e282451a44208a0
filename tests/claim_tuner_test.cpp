#include "worker/claim_tuner.hpp"

#include <gtest/gtest.h>

namespace dbsup::test {
namespace {

using namespace std::chrono_literals;

Job job(const std::string& task, const std::string& id) {
    Job j;
    j.task = task;
    j.id = id;
    return j;
}

TEST(ClaimTuner, FullClaimsOfQuickJobsGrowToTheCap) {
    ClaimTuner tuner(1000, 50ms);
    EXPECT_EQ(tuner.size(), ClaimTuner::kFirstSize);
    for (int i = 0; i < 20; ++i) {
        const std::size_t asked = tuner.size();
        tuner.claimed(asked, asked);
        for (std::size_t j = 0; j < asked; ++j) tuner.ran("noop", 20'000);  // 20 µs a job
    }
    EXPECT_EQ(tuner.size(), 1000u);
}

TEST(ClaimTuner, AClaimThatIsNotFullDoesNotGrow) {
    ClaimTuner tuner(1000, 50ms);
    tuner.claimed(16, 3);
    EXPECT_EQ(tuner.size(), 16u);
}

TEST(ClaimTuner, LongJobsShrinkTheClaimToAboutTheTargetsWorth) {
    ClaimTuner tuner(1000, 50ms);
    for (int i = 0; i < 10; ++i) tuner.claimed(tuner.size(), tuner.size());
    ASSERT_EQ(tuner.size(), 1000u);
    for (int i = 0; i < 100; ++i) tuner.ran("report", 10'000'000);  // 10 ms a job
    EXPECT_EQ(tuner.size(), 5u);
    for (int i = 0; i < 100; ++i) tuner.ran("report", 200'000'000);  // 200 ms a job
    EXPECT_EQ(tuner.size(), 1u);
}

TEST(ClaimTuner, KnownSlowTasksRunAfterTheOthers) {
    ClaimTuner tuner(1000, 50ms);
    tuner.ran("report", 300'000'000);
    tuner.ran("noop", 20'000);
    tuner.ran("noop", 200'000'000);  // descheduled once: not a slow task
    tuner.ran("noop", 20'000);
    EXPECT_TRUE(tuner.slow("report"));
    EXPECT_FALSE(tuner.slow("noop"));
    EXPECT_FALSE(tuner.slow("never_seen"));
    EXPECT_TRUE(tuner.lasts("report"));
    EXPECT_FALSE(tuner.lasts("never_seen"));
    std::vector<Job> jobs = {job("report", "a"), job("noop", "b"), job("report", "c"),
                             job("never_seen", "d")};
    tuner.order(jobs);
    std::string order;
    for (const Job& j : jobs) order += j.id;
    EXPECT_EQ(order, "bdac");
}

TEST(ClaimTuner, TasksOfAMillisecondOrMoreLast) {
    ClaimTuner tuner(1000, 50ms);
    for (int i = 0; i < 20; ++i) tuner.ran("noop", 20'000);
    EXPECT_FALSE(tuner.lasts("noop"));
    for (int i = 0; i < 20; ++i) tuner.ran("noop", 5'000'000);
    EXPECT_TRUE(tuner.lasts("noop"));
}

}  // namespace
}  // namespace dbsup::test
