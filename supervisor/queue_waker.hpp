// The supervisor's one listener for new jobs (DESIGN section 7). Idle job
// threads of its workers sleep on the segment's WakeSignal; this thread wakes
// as many of them as there are new jobs when:
//   - PostgreSQL announces jobs on Queue::kWakeChannel (LISTEN on a connection
//     of its own, counted in the start-up connection check; lost connections
//     are reopened with backoff, and the queue is polled meanwhile);
//   - a job announced for later comes due (the NOTIFY payload's delay; jobs
//     noted due in the segment wake a sleeper by themselves);
//   - the backstop poll comes round, for jobs announced where this supervisor
//     could not hear (another host's retry, an insert that did not announce):
//     every poll_interval_ms in `wake = "poll"` mode or while LISTEN is down,
//     and every max(1 s, poll_interval_ms) otherwise (on SQLite enqueuers on
//     this host wake the workers themselves). Any other wake postpones it.
// Nothing here touches the event loop; stop() ends the thread promptly, even
// in the middle of a connection attempt.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <queue>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "shared/queue/wake_signal.hpp"

struct pg_conn;

namespace dbsup {

class QueueWaker {
public:
    /// The backstop poll's shortest interval while LISTEN works.
    static constexpr auto kBackstop = std::chrono::seconds(1);

    /// Starts the thread. @throws std::system_error when it cannot.
    /// header: the segment's wake word, and its cancel epoch, bumped for every
    /// cancel request heard (Queue::kCancelChannel).
    QueueWaker(const Config& config, ShmHeader& header);
    ~QueueWaker();
    QueueWaker(const QueueWaker&) = delete;
    QueueWaker& operator=(const QueueWaker&) = delete;

    void stop() noexcept;
    /// For the stats: "listen" (PostgreSQL), "local" (SQLite: enqueuers on this
    /// host wake the workers), "poll" (configured), or "poll: LISTEN down".
    std::string mode() const;
    std::uint64_t notifications_total() const noexcept { return notifications_.load(); }
    std::uint64_t wakes_total() const noexcept { return wakes_.load(); }

private:
    using Clock = std::chrono::steady_clock;

    void run() noexcept;
    /// Opens the LISTEN connection; false (logged) when it cannot.
    bool connect();
    void disconnect() noexcept;
    /// Waits for `events` on `fd` (-1: none) until `deadline`: -1 on stop(),
    /// else fd's returned events (0: timeout).
    int wait_for(int fd, short events, Clock::time_point deadline) const;
    /// Reads what arrived on the connection: jobs due now, and due times into due_.
    /// False when the connection is lost.
    bool read_notifications(std::uint32_t& jobs_now);
    Clock::duration poll_interval() const;

    std::string conninfo_;  // holds the password: never logged
    std::set<std::string> queue_names_;  // the queues the workers serve
    bool woken_;   // wake = "auto": enqueuers wake the workers (NOTIFY, or locally on SQLite)
    bool listen_;  // PostgreSQL and wake = "auto"
    bool pooled_without_listen_;  // wake = "auto", but nothing to LISTEN on
    std::chrono::milliseconds poll_interval_;
    WakeSignal signal_;
    std::atomic<std::uint64_t>& cancel_epoch_;
    int stop_fd_ = -1;  // an eventfd: stop() writes it
    pg_conn* conn_ = nullptr;  // the run() thread's
    bool warned_down_ = false;
    std::priority_queue<std::uint64_t, std::vector<std::uint64_t>, std::greater<>> due_;
    std::atomic<bool> listening_{false};
    std::atomic<std::uint64_t> notifications_{0};
    std::atomic<std::uint64_t> wakes_{0};
    std::thread thread_;  // last: starts once everything above is built
};

}  // namespace dbsup
