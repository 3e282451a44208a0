#include "worker/worker_process.hpp"

#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <ctime>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>

#include "config/config_error.hpp"
#include "config/config_loader.hpp"
#include "shared/clock.hpp"
#include "shared/db/database_manager.hpp"
#include "shared/log_file.hpp"
#include "shared/metrics/shm_segment.hpp"
#include "shared/monitoring/shm_query_observer.hpp"
#include "worker/exit_codes.hpp"
#include "worker/job_runner.hpp"
#include "worker/task_registry.hpp"

namespace dbsup {
namespace {

sigset_t stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1}) sigaddset(&set, s);
    return set;
}

// Each database answers once before the worker says it is ready; an optional
// one that does not is logged and left for later.
bool check_databases(const Config& config, std::size_t slot) {
    for (const auto& [name, db] : config.databases) {
        try {
            Session& s = DatabaseManager::instance().session(name);
            s.execute("SELECT 1");
            s.commit();
        } catch (const std::exception& e) {
            if (!db.optional) {
                spdlog::error("worker {} (pid {}): database '{}' unusable: {}", slot, getpid(),
                              name, e.what());
                return false;
            }
            spdlog::warn("worker {} (pid {}): optional database '{}' degraded: {}", slot,
                         getpid(), name, e.what());
        }
    }
    return true;
}

// Test switch DBSUP_TEST_WORKER_EXIT=CODE (every worker) or CODE@SLOT (that
// slot's only): exit with CODE once the databases answered (crash loops,
// configuration errors).
std::optional<int> test_exit_code(std::size_t slot) {
    const char* value = std::getenv("DBSUP_TEST_WORKER_EXIT");
    if (!value) return std::nullopt;
    std::string text(value);
    auto at = text.find('@');
    if (at != std::string::npos && std::stoul(text.substr(at + 1)) != slot) return std::nullopt;
    return std::stoi(text.substr(0, at));
}

// The main thread's sessions report to the worker's observer: they end, and
// the pools close, whichever way run() leaves.
struct DatabasesOpen {
    DatabasesOpen() = default;
    DatabasesOpen(const DatabasesOpen&) = delete;
    DatabasesOpen& operator=(const DatabasesOpen&) = delete;
    ~DatabasesOpen() { DatabaseManager::instance().close_worker(); }
};

void reopen(const std::string& log_file) noexcept {
    try {
        LogFile::redirect_stderr(log_file);
    } catch (const std::exception& e) {
        spdlog::error("worker (pid {}): {}", getpid(), e.what());
    }
}

// Copies this process's pool and circuit breaker figures into its slot (the
// main thread is those tables' only writer).
void publish_pools(ShmWorkerSlot& slot, std::mutex& append_mutex) {
    for (const PoolStats& p : DatabaseManager::instance().pool_stats()) {
        ShmLabelRow* row = slot.pools.find_or_add(p.name, append_mutex);
        if (!row) continue;
        const std::uint64_t figures[] = {p.size, p.in_use, p.idle, p.overflow,
                                         p.checkouts_total, p.timeouts_total, p.opened_total,
                                         p.closed_total, p.recycled_total,
                                         p.preping_failures_total,
                                         p.statement_cache_hits_total,
                                         p.statement_cache_misses_total,
                                         p.statement_cache_evictions_total};
        for (std::size_t i = 0; i < std::size(figures); ++i)
            row->counters[i].store(figures[i], std::memory_order_relaxed);
        row->seconds.assign(p.wait);
        if (!p.owns_breaker) continue;  // published once, by the pool that owns it
        if (ShmLabelRow* b = slot.breakers.find_or_add(p.name, append_mutex)) {
            auto column = [b](BreakerColumn c) -> std::atomic<std::uint64_t>& {
                return b->counters[static_cast<std::size_t>(c)];
            };
            column(BreakerColumn::state).store(p.breaker_state, std::memory_order_relaxed);
            column(BreakerColumn::opened).store(p.breaker_opened_total, std::memory_order_relaxed);
            column(BreakerColumn::rejected).store(p.breaker_rejected_total,
                                                  std::memory_order_relaxed);
        }
    }
}

// Heartbeats while the runner works; a TERM/INT drains it (heartbeats go on
// meanwhile, so a long drain is not mistaken for a hang); returns the exit code.
int heartbeat_loop(ShmWorkerSlot& slot, const ShmHeader& header, JobRunner& runner,
                   const std::string& log_file) {
    const sigset_t signals = stop_signals();
    // Signals end the wait at once; the tick only paces heartbeats and pool
    // figures (worker_timeout_s is whole seconds), and a drain's end.
    const timespec tick{0, 500'000'000}, draining_tick{0, 50'000'000};
    const bool frozen = std::getenv("DBSUP_TEST_FREEZE_HEARTBEAT") != nullptr;  // test switch
    bool draining = false;
    std::mutex pools_mutex;
    for (;;) {
        if (!frozen) slot.heartbeat_ns.store(monotonic_ns(), std::memory_order_relaxed);
        publish_pools(slot, pools_mutex);
        if (!draining && getppid() != static_cast<pid_t>(header.supervisor_pid.load())) {
            runner.request_stop();  // orphaned: finish what runs, then go
            draining = true;
        }
        if (draining && runner.stopped()) return exit_codes::kDrained;
        int sig = sigtimedwait(&signals, nullptr, draining ? &draining_tick : &tick);
        if (sig == SIGQUIT) _exit(exit_codes::kDrained);
        if (sig == SIGUSR1 && !log_file.empty()) reopen(log_file);
        if ((sig == SIGTERM || sig == SIGINT) && !draining) {
            slot.state.store(static_cast<std::uint64_t>(WorkerState::draining));
            runner.request_stop();
            draining = true;
        }
    }
}

}  // namespace

int WorkerProcess::run(const std::string& shm_name, std::size_t slot_index,
                       std::uint64_t generation, const std::string& log_file,
                       const TaskRegistrar& register_tasks) {
    // Die with the supervisor, and notice if it already died before this line.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    // Spawned through /proc/self/fd/N, the kernel named us "N": ps -C and
    // pkill should find workers by the program's name.
    prctl(PR_SET_NAME, program_invocation_short_name);
    setpgid(0, 0);  // a terminal's Ctrl-C reaches the supervisor only; it drains us
    sigset_t signals = stop_signals();
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread exists
    std::signal(SIGPIPE, SIG_IGN);
    try {
        ShmSegment segment = ShmSegment::attach(shm_name);
        if (getppid() != static_cast<pid_t>(segment.header().supervisor_pid.load()))
            return exit_codes::kHandledError;
        ShmWorkerSlot& slot = segment.slot(slot_index);
        slot.pid.store(static_cast<std::uint64_t>(getpid()));
        slot.generation.store(generation);
        slot.started_ns.store(monotonic_ns());
        slot.heartbeat_ns.store(monotonic_ns());
        slot.state.store(static_cast<std::uint64_t>(WorkerState::starting));
        Config config = ConfigLoader::load_string(segment.config(), "shm:" + shm_name);
        ShmQueryObserver observer(slot,
                                  std::chrono::milliseconds(config.monitoring.slow_query_ms));
        DatabaseManager::instance().init_worker(
            config.databases, "dbsupervisor/" + std::to_string(slot_index), &observer,
            config.resilience.circuit_breaker,
            static_cast<std::size_t>(config.monitoring.statement_cache_size));
        DatabasesOpen databases_open;  // closed before the observer goes
        if (!check_databases(config, slot_index)) return exit_codes::kHandledError;
        if (auto code = test_exit_code(slot_index)) return *code;
        TaskRegistry tasks = TaskRegistry::build(config, register_tasks);
        JobRunner runner(config, tasks, slot, segment.header().wake, segment.header().cancel_epoch,
                         Queue::owner_id(segment.header().supervisor_pid.load(), slot_index,
                                         static_cast<std::uint64_t>(getpid())));
        runner.start();
        slot.state.store(static_cast<std::uint64_t>(WorkerState::ready));
        int code = heartbeat_loop(slot, segment.header(), runner, log_file);
        runner.join();
        slot.state.store(static_cast<std::uint64_t>(WorkerState::stopped));
        return code;
    } catch (const ConfigError& e) {
        spdlog::error("worker {} (pid {}): configuration: {}", slot_index, getpid(), e.what());
        return exit_codes::kConfigError;
    } catch (const std::exception& e) {
        spdlog::error("worker {} (pid {}): {}", slot_index, getpid(), e.what());
        return exit_codes::kHandledError;
    }
}

}  // namespace dbsup
