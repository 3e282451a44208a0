// The parent process (DESIGN sections 2 and 8): owns the shared-memory
// segment, spawns workers with Boost.Process, and runs one Boost.Asio loop.
// Signal completions only record the signal; each wake of the loop then drains
// requests in priority order (shutdown, child exits, heartbeats, scaling, stats)
// and ends by launching whatever workers are missing (STYLE points 1-6).
// The supervisor is the only component that reaps (waitpid), and shutdown only
// ever escalates: none < graceful < fast < immediate.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "shared/log_options.hpp"
#include "shared/metrics/shm_segment.hpp"
#include "supervisor/health_monitor.hpp"
#include "supervisor/progress_line.hpp"
#include "supervisor/queue_keeper.hpp"
#include "supervisor/scheduler.hpp"
#include "supervisor/self_executable.hpp"
#include "supervisor/queue_waker.hpp"
#include "supervisor/stats_writer.hpp"
#include "supervisor/systemd_notifier.hpp"

namespace dbsup {

class Supervisor {
public:
    enum class State { starting, running, draining, stopped };
    enum class Shutdown { none, graceful, fast, immediate };

    /// @throws std::runtime_error when the segment cannot be created.
    /// log: passed on to every worker.
    /// reload: reads and validates the configuration again (SIGHUP).
    explicit Supervisor(Config config, LogOptions log = {}, std::function<Config()> reload = {});
    /// Runs until shut down; returns the process exit code.
    int run();
    /// The event loop, for servers that live on it (see MetricsServer).
    boost::asio::io_context& io() noexcept { return io_; }
    /// Called with every stats document written.
    void on_stats(std::function<void(const nlohmann::json&)> listener) {
        stats_listeners_.push_back(std::move(listener));
    }

private:
    using Clock = std::chrono::steady_clock;
    struct WorkerSlot {
        pid_t pid = 0;
        std::uint64_t generation = 0;
        bool wanted = false;  // the slot should have a worker
        int crashes = 0;
        Clock::time_point started_at{};
        Clock::time_point next_spawn_at{};
        bool replace = false;    // runs with an older configuration: replace it (HUP)
        bool replacing = false;  // told to drain for that; respawn at once when it exits
    };

    void wait_for_signal();
    void wait_for_tick();
    /// WATCHDOG=1 from the event loop itself, so a wedged loop stops sending it.
    void feed_watchdog();
    /// Every wanted worker alive and ready, and no replacement under way.
    bool workers_settled() const;
    /// READY=1 once the workers are settled and no replacement is due.
    void notify_ready_when_settled();
    void process_requests();
    void process_shutdown_request();
    void process_child_exits();
    void on_child_exit(std::size_t slot, int status);
    void check_heartbeats();
    void process_scaling();
    void reload();
    void process_replacements();
    void launch_missing_workers();
    void spawn(std::size_t slot);
    void write_stats() noexcept;
    void signal_workers(int sig);
    void reopen_log() noexcept;
    void set_state(State state);
    std::string clean_and_name();
    bool any_alive() const;
    SupervisorView view() const;

    Config config_;
    SelfExecutable self_;  // workers exec this very file, even once it is replaced on disk
    LogOptions log_;
    std::function<Config()> reload_;
    std::vector<std::function<void(const nlohmann::json&)>> stats_listeners_;
    std::vector<QueueKeeper::Orphan> orphans_;  // filled by clean_and_name(), before segment_
    ShmSegment segment_;
    boost::asio::io_context io_;
    boost::asio::signal_set signals_;
    boost::asio::steady_timer tick_;
    SystemdNotifier systemd_;  // before any worker is spawned: it clears NOTIFY_SOCKET
    boost::asio::steady_timer watchdog_;
    bool ready_notified_ = false;  // READY=1 sent since the start or the last reload
    std::vector<WorkerSlot> slots_;
    State state_ = State::starting;
    Shutdown shutdown_ = Shutdown::none;
    Clock::time_point started_at_ = Clock::now();
    Clock::time_point shutdown_deadline_{};
    Clock::time_point next_stats_at_{};
    std::uint64_t restarts_total_ = 0;
    RetiredTotals retired_;
    QueueKeeper queue_;
    std::optional<Scheduler> scheduler_;  // rebuilt by a reload, with the new schedules
    QueueWaker waker_;
    HealthMonitor health_;
    ProgressLine progress_;
    // Requests recorded by the signal completion, acted on by process_requests().
    Shutdown pending_shutdown_ = Shutdown::none;  // the strongest request
    int pending_scale_ = 0;     // +1 per TTIN, -1 per TTOU
    bool pending_stats_ = false;
    bool pending_reload_ = false;
    int exit_code_ = 0;
};

const char* to_string(Supervisor::State state) noexcept;

}  // namespace dbsup
