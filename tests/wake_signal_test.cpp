// WakeSignal on a word in ordinary memory (the futex calls are the same as on
// the shared segment), with real threads.
#include "shared/queue/wake_signal.hpp"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "shared/clock.hpp"

namespace dbsup::test {
namespace {

using namespace std::chrono_literals;

class WakeSignalTest : public ::testing::Test {
protected:
    /// Starts a thread that takes a ticket, then sleeps up to `timeout`; its result.
    std::future<bool> sleeper(std::chrono::milliseconds timeout) {
        return std::async(std::launch::async, [this, timeout] {
            WakeSignal signal(wake_);
            return signal.sleep(signal.ticket(), timeout, stop_);
        });
    }
    /// Waits until `n` threads sleep.
    void until_sleeping(std::uint32_t n) {
        while (WakeSignal(wake_).sleepers() < n) std::this_thread::sleep_for(1ms);
    }

    ShmWake wake_{};
    std::atomic<bool> stop_{false};
};

TEST_F(WakeSignalTest, AWakeEndsASleepWithNews) {
    auto woken = sleeper(10s);
    until_sleeping(1);
    const auto started = std::chrono::steady_clock::now();
    WakeSignal(wake_).wake(1);
    EXPECT_TRUE(woken.get());
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
    EXPECT_EQ(WakeSignal(wake_).sleepers(), 0u);
}

TEST_F(WakeSignalTest, AWakeBetweenTicketAndSleepIsNotLost) {
    WakeSignal signal(wake_);
    const WakeSignal::Ticket ticket = signal.ticket();  // before a claim
    signal.wake(1);                                      // while it runs
    const auto started = std::chrono::steady_clock::now();
    EXPECT_TRUE(signal.sleep(ticket, 10s, stop_));
    EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
}

TEST_F(WakeSignalTest, OneNewJobWakesOneOfTwoSleepers) {
    auto first = sleeper(3s);
    auto second = sleeper(3s);
    until_sleeping(2);
    WakeSignal(wake_).wake(1);
    // One returns now; the other sleeps on to its timeout.
    const auto deadline = std::chrono::steady_clock::now() + 1s;
    while (first.wait_for(0ms) == std::future_status::timeout &&
           second.wait_for(0ms) == std::future_status::timeout &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(200ms);
    const bool first_done = first.wait_for(0ms) == std::future_status::ready;
    const bool second_done = second.wait_for(0ms) == std::future_status::ready;
    EXPECT_NE(first_done, second_done) << "woken: " << first_done << " and " << second_done;
    EXPECT_EQ(WakeSignal(wake_).sleepers(), 1u);
}

TEST_F(WakeSignalTest, ARouseIsNoNewsButEndsTheSleepOfAStoppingThread) {
    auto sleeping = sleeper(10s);
    until_sleeping(1);
    WakeSignal(wake_).rouse_all();  // someone else's stop: sleeps on
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(sleeping.wait_for(0ms), std::future_status::timeout);
    stop_ = true;
    WakeSignal(wake_).rouse_all();
    EXPECT_FALSE(sleeping.get());
}

TEST_F(WakeSignalTest, ASleepEndsAtItsTimeoutWithoutNews) {
    WakeSignal signal(wake_);
    const auto started = std::chrono::steady_clock::now();
    EXPECT_FALSE(signal.sleep(signal.ticket(), 50ms, stop_));
    EXPECT_GE(std::chrono::steady_clock::now() - started, 50ms);
}

TEST_F(WakeSignalTest, AJobNotedDueWakesOneSleeperWhenDue) {
    auto first = sleeper(1500ms);
    auto second = sleeper(1500ms);
    until_sleeping(2);
    const auto started = std::chrono::steady_clock::now();
    WakeSignal(wake_).note_due(monotonic_ns() + 300'000'000ULL);  // in 300 ms
    EXPECT_EQ(first.wait_for(200ms), std::future_status::timeout) << "woke before it was due";
    // One takes it when due; the other sleeps on to its timeout.
    const auto deadline = std::chrono::steady_clock::now() + 1s;
    while (first.wait_for(0ms) == std::future_status::timeout &&
           second.wait_for(0ms) == std::future_status::timeout &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    EXPECT_GE(std::chrono::steady_clock::now() - started, 300ms);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
    EXPECT_EQ(WakeSignal(wake_).sleepers(), 1u) << "the other sleeps on";
    EXPECT_EQ(wake_.due_ns.load(), 0u);
}

TEST_F(WakeSignalTest, OnlyTheEarliestDueTimeIsKept) {
    WakeSignal signal(wake_);
    signal.note_due(3000);
    signal.note_due(1000);
    signal.note_due(2000);
    EXPECT_EQ(wake_.due_ns.load(), 1000u);
}

}  // namespace
}  // namespace dbsup::test
