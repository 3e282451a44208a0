// How idle job threads sleep until there is work, across processes (DESIGN
// section 7). Every idle job thread of every worker of a supervisor sleeps on
// one futex word in the shared segment (ShmWake::sequence). A wake bumps the
// word and wakes at most as many sleepers as there are new jobs, so one new job
// costs one claim, not one per idle thread. Who wakes:
//   - the supervisor's QueueWaker: PostgreSQL NOTIFYs (due now or later), a
//     backstop poll;
//   - the clock: a job noted due (note_due) wakes one sleeper when it comes due;
//   - a job thread whose claim came back full (more work waits: one more
//     thread joins), or that stops (rouse_all: its siblings must see the stop);
//   - an enqueuer on this host, for SQLite (wake_local).
// Lost wakes cannot happen: a thread takes a Ticket before it claims, and the
// futex wait returns at once when the word moved since.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "shared/metrics/shm_layout.hpp"

namespace dbsup {

struct Config;

class WakeSignal {
public:
    explicit WakeSignal(ShmWake& wake) noexcept : wake_(wake) {}

    /// Where the word stood: taken before a claim, so a wake during it counts.
    struct Ticket {
        std::uint32_t sequence;
        std::uint32_t rouses;
    };
    Ticket ticket() const noexcept;
    /// Sleeps until woken with news since `ticket`, a job noted due comes due
    /// (this sleeper takes it: the others sleep on), `timeout` passes, or
    /// `stop` is set (after a rouse_all()). True when there is news.
    bool sleep(Ticket ticket, std::chrono::milliseconds timeout,
               const std::atomic<bool>& stop) noexcept;
    /// New work: wakes up to `n` sleeping threads (every one when the workers
    /// serve several queues: ShmWake::queues).
    void wake(std::uint32_t n) noexcept;
    /// Wakes every sleeper without news: each checks its stop flag and sleeps on.
    void rouse_all() noexcept;
    std::uint32_t sleepers() const noexcept;

    /// A job becomes due at this CLOCK_MONOTONIC time: the earliest known is
    /// kept, and one sleeping thread wakes then. (Only the earliest: a later
    /// one noted meanwhile is found by the next claim or the backstop poll.)
    void note_due(std::uint64_t at_ns) noexcept;

    /// Identifies a queue database for local wakes: its SQLite file (0 for
    /// PostgreSQL, whose enqueuers NOTIFY instead). Not the queue's name: a
    /// supervisor may serve several, and a wake for another costs one claim.
    static std::uint64_t queue_key(const Config& config);
    /// Wakes `n` job threads (or notes `delay_ms` ahead when > 0) in every
    /// supervisor on this host whose workers take jobs from `key`. Best effort:
    /// a segment that cannot be opened is skipped (the backstop poll finds the jobs).
    static void wake_local(std::uint64_t key, std::uint32_t n, std::int64_t delay_ms) noexcept;
    /// An operator cancelled a running job: tells the workers of every
    /// supervisor on this host to look which of their jobs (ShmHeader::cancel_epoch).
    static void announce_cancel_local() noexcept;

private:
    ShmWake& wake_;
};

}  // namespace dbsup
