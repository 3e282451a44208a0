// Marks, in a job-runner thread's ShmRunnerActivity, a job or a batch as
// started for as long as the mark lives (RAII: an exception ends it too).
#pragma once

#include <string_view>

#include "shared/metrics/runner_activity.hpp"

namespace dbsup {

/// A null activity marks nothing (a BatchTransaction in a test, say).
class StartedMark {
public:
    StartedMark(ShmRunnerActivity* activity, std::string_view job_id) noexcept
        : activity_(activity) {
        if (activity_) activity_->start_job(job_id);
    }
    explicit StartedMark(ShmRunnerActivity* activity) noexcept : activity_(activity) {
        if (activity_) activity_->start_batch();
    }
    ~StartedMark() {
        if (activity_) activity_->finish();
    }
    StartedMark(const StartedMark&) = delete;
    StartedMark& operator=(const StartedMark&) = delete;

private:
    ShmRunnerActivity* activity_;
};

}  // namespace dbsup
