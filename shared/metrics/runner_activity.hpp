// What one job-runner thread of a worker is doing, in that worker's slot: the
// job it is running, or "a batch of statements is on the server". Only that
// thread writes it. The supervisor reads it after the worker died, to charge
// an attempt only to the claims the worker had started (one of them may be
// what killed it) and to put the rest back as if never claimed.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace dbsup {

enum class RunnerActivity : std::uint64_t {
    idle,     // claiming, committing or waiting: no claim of it has started
    one_job,  // running the job whose id is in job_id
    batch,    // a batch's statements are running: every claim of it has started
};

struct ShmRunnerActivity {
    static constexpr std::size_t kIdWords = 5;  // a UUID's 36 characters, NUL-padded
    std::atomic<std::uint64_t> activity;         // RunnerActivity, stored last (release)
    std::array<std::atomic<std::uint64_t>, kIdWords> job_id;

    void start_job(std::string_view id) noexcept {
        char text[kIdWords * 8] = {};
        std::memcpy(text, id.data(), std::min(id.size(), sizeof text));
        for (std::size_t i = 0; i < kIdWords; ++i) {
            std::uint64_t word = 0;
            std::memcpy(&word, text + i * 8, 8);
            job_id[i].store(word, std::memory_order_relaxed);
        }
        set(RunnerActivity::one_job);
    }
    void start_batch() noexcept { set(RunnerActivity::batch); }
    void finish() noexcept { set(RunnerActivity::idle); }

    RunnerActivity read() const noexcept {
        return static_cast<RunnerActivity>(activity.load(std::memory_order_acquire));
    }
    std::string read_job_id() const {
        char text[kIdWords * 8 + 1] = {};
        for (std::size_t i = 0; i < kIdWords; ++i) {
            std::uint64_t word = job_id[i].load(std::memory_order_relaxed);
            std::memcpy(text + i * 8, &word, 8);
        }
        return text;
    }

private:
    void set(RunnerActivity a) noexcept {
        activity.store(static_cast<std::uint64_t>(a), std::memory_order_release);
    }
};

}  // namespace dbsup
