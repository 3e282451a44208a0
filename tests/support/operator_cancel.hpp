// An operator's `jobs cancel` of a running job, as the end-to-end tests of
// both runners check it: the command says the worker stops it, and within
// `limit` the job ends dead, marked cancelled, not retried, its last error
// saying why.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "shared/queue/job.hpp"
#include "tests/support/supervisor_process.hpp"

namespace dbsup::test {

/// Cancels running job `id` (`config_args`: "--config FILE") and checks how it
/// ended; `find` reads the job from the queue's database.
inline void expect_operator_cancel_stops(const std::string& config_args, const std::string& id,
                                         const std::string& task,
                                         const std::function<std::optional<Job>()>& find,
                                         std::chrono::milliseconds limit) {
    const auto asked = std::chrono::steady_clock::now();
    const CommandRun cancel = run_command(config_args + " jobs cancel " + id);
    ASSERT_EQ(cancel.exit_code, 0) << cancel.output;
    EXPECT_NE(cancel.output.find("is running: its worker stops it"), std::string::npos)
        << cancel.output;
    std::optional<Job> job;
    for (auto until = asked + std::chrono::seconds(10); std::chrono::steady_clock::now() < until;
         std::this_thread::sleep_for(std::chrono::milliseconds(5))) {
        job = find();
        if (job && job->state != "running") break;
    }
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - asked);
    std::cout << task << ": cancelled after " << took.count() << " ms (with the CLI's start)\n";
    ASSERT_TRUE(job);
    EXPECT_EQ(job->state, "dead") << task << ": " << job->last_error;
    EXPECT_TRUE(job->cancelled) << task;
    EXPECT_EQ(job->attempts, 1) << task << ": retried";
    EXPECT_EQ(job->last_error.rfind("cancelled by operator while running", 0), 0u)
        << job->last_error;
    EXPECT_LT(took, limit) << task << ": took " << took.count() << " ms";
}

}  // namespace dbsup::test
