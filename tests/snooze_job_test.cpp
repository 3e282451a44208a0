// SnoozeJob: the token a handler's or a SQL task's "not yet" travels as.
#include <gtest/gtest.h>

#include "worker/snooze_job.hpp"

namespace dbsup {
namespace {

using std::chrono::milliseconds;

TEST(SnoozeJob, ItsMessageCarriesItsDelayAndIsReadBackFromAnyErrorText) {
    EXPECT_EQ(SnoozeJob::requested_by(SnoozeJob(milliseconds(2500)).what()), milliseconds(2500));
    // As PostgreSQL and SQLite report dbsup_snooze(30), wrapped by the database layer.
    EXPECT_EQ(SnoozeJob::requested_by("database 'main': ERROR:  dbsup_snooze:30000\nHINT: ..."),
              milliseconds(30000));
    EXPECT_EQ(SnoozeJob::requested_by("dbsup_snooze:0"), milliseconds(0));
}

TEST(SnoozeJob, OtherErrorsAndItsOwnUsageErrorAreNoSnooze) {
    EXPECT_FALSE(SnoozeJob::requested_by("ERROR: relation \"x\" does not exist"));
    EXPECT_FALSE(SnoozeJob::requested_by("dbsup_snooze: seconds must be 0 or more"));
    EXPECT_FALSE(SnoozeJob::requested_by("dbsup_snooze:"));
}

TEST(SnoozeJob, TheDelayIsBounded) {
    EXPECT_EQ(SnoozeJob(milliseconds(-5)).delay(), milliseconds(0));
    EXPECT_EQ(SnoozeJob(std::chrono::hours(24 * 365)).delay(), SnoozeJob::kMaxDelay);
    EXPECT_EQ(SnoozeJob::requested_by("dbsup_snooze:99999999999999"), SnoozeJob::kMaxDelay);
}

}  // namespace
}  // namespace dbsup
