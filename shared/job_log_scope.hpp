// The job a thread is running, for the log lines written meanwhile: the JSON log
// format adds its id, task, queue and how long it has run to each of them, so
// a log shipper can group a job's lines without parsing messages.
#pragma once

#include <chrono>

#include "shared/queue/job.hpp"

namespace dbsup {

class JobLogScope {
public:
    /// The calling thread runs `job` (which must outlive this), started at
    /// `started` (the runner's own clock reading), until the scope ends.
    JobLogScope(const Job& job, std::chrono::steady_clock::time_point started) noexcept;
    ~JobLogScope();
    JobLogScope(const JobLogScope&) = delete;
    JobLogScope& operator=(const JobLogScope&) = delete;

    /// The innermost scope of the calling thread; nullptr outside any job.
    static const JobLogScope* current() noexcept;

    const Job& job() const noexcept { return job_; }
    std::chrono::steady_clock::duration elapsed() const noexcept {
        return std::chrono::steady_clock::now() - started_;
    }

private:
    const Job& job_;
    const std::chrono::steady_clock::time_point started_;
    const JobLogScope* outer_;
};

}  // namespace dbsup
