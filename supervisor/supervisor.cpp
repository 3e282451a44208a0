#include "supervisor/supervisor.hpp"

#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/process/args.hpp>
#include <boost/process/child.hpp>
#include <boost/process/exe.hpp>
#include <boost/process/extend.hpp>
#include <algorithm>
#include <csignal>
#include <cstring>
#include <thread>
#include <utility>

#include "config/config_error.hpp"
#include "config/config_printer.hpp"
#include "config/queue_shares.hpp"
#include "shared/child_setup.hpp"
#include "shared/clock.hpp"
#include "shared/log_file.hpp"
#include "shared/queue/wake_signal.hpp"
#include "worker/exit_codes.hpp"

namespace dbsup {
namespace {

constexpr auto kTick = std::chrono::milliseconds(100);
constexpr auto kStableRun = std::chrono::minutes(1);  // a crash after this resets the backoff
constexpr auto kSpawnStagger = std::chrono::milliseconds(5);

// A worker inherits none of the supervisor's descriptors (the metrics
// listener, whose port a restarted supervisor could not bind while old workers
// drain; database sockets; accepted HTTP connections): see child_setup.

std::string describe(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return "was terminated by signal " + std::to_string(WTERMSIG(status)) + ": " +
               strsignal(WTERMSIG(status));
    return "changed state " + std::to_string(status);
}

}  // namespace

const char* to_string(Supervisor::State state) noexcept {
    switch (state) {
        case Supervisor::State::starting: return "starting";
        case Supervisor::State::running: return "running";
        case Supervisor::State::draining: return "draining";
        case Supervisor::State::stopped: return "stopped";
    }
    return "unknown";
}

// Segments of supervisors that died by SIGKILL are cleared before ours is made.
// A crashed supervisor's workers that died with it could not say which claims
// they had started; their slots still can: those workers are remembered, to be
// taken back like any dead worker's (only started jobs pay an attempt).
std::string Supervisor::clean_and_name() {
    const std::size_t n = ShmSegment::remove_stale_segments([this](const ShmSegment& stale) {
        const auto supervisor = stale.header().supervisor_pid.load();
        for (std::size_t i = 0; i < stale.slot_count(); ++i) {
            const ShmWorkerSlot& slot = stale.slot(i);
            const auto pid = static_cast<pid_t>(slot.pid.load());
            if (pid <= 0 || ShmSegment::process_alive(static_cast<std::uint64_t>(pid)))
                continue;  // a live one drains by itself
            const std::string owner =
                Queue::owner_id(supervisor, i, static_cast<std::uint64_t>(pid));
            orphans_.push_back({i, pid,
                                {owner, QueueKeeper::started_claims(slot, owner),
                                 "worker " + std::to_string(pid) + " died with its supervisor (pid " +
                                     std::to_string(supervisor) + ")"}});
        }
    });
    if (n > 0)
        spdlog::info("supervisor: removed {} stale shared memory segment(s); taking back the "
                     "claims of {} worker(s) that died with them", n, orphans_.size());
    return ShmSegment::name_for(getpid());
}

Supervisor::Supervisor(Config config, LogOptions log, std::function<Config()> reload)
    : config_(std::move(config)),
      log_(std::move(log)),
      reload_(std::move(reload)),
      segment_(ShmSegment::create(clean_and_name(), ShmHeader::kMaxWorkers,
                                  ConfigPrinter::to_toml(config_))),
      signals_(io_),
      tick_(io_),
      watchdog_(io_),
      slots_(ShmHeader::kMaxWorkers),
      queue_(config_),
      scheduler_(std::in_place, config_),
      waker_(config_, segment_.header()),
      health_(config_) {
    segment_.header().wake.queue_key.store(WakeSignal::queue_key(config_));
    segment_.header().wake.queues.store(static_cast<std::uint32_t>(queue_shares(config_).size()));
    for (int s : {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU, SIGUSR1, SIGCHLD})
        signals_.add(s);
    std::signal(SIGPIPE, SIG_IGN);
    for (std::size_t i = 0; i < static_cast<std::size_t>(config_.supervisor.workers); ++i)
        slots_[i].wanted = true;
    if (!orphans_.empty()) queue_.release_orphans(std::exchange(orphans_, {}));
}

void Supervisor::set_state(State state) {
    if (state == state_) return;
    spdlog::info("supervisor (pid {}): {} -> {}", getpid(), to_string(state_), to_string(state));
    state_ = state;
}

int Supervisor::run() {
    wait_for_signal();
    wait_for_tick();
    launch_missing_workers();
    set_state(State::running);
    write_stats();
    feed_watchdog();
    io_.run();
    scheduler_->stop();  // its last firing is in the last stats written, never after them
    set_state(State::stopped);
    write_stats();
    progress_.finish();
    return exit_code_;
}

// The completion records and returns; the loop acts in process_requests().
void Supervisor::wait_for_signal() {
    signals_.async_wait([this](const boost::system::error_code& error, int sig) {
        if (error) return;
        if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT) {
            // A second TERM/INT escalates graceful to fast.
            const Shutdown asked = sig == SIGQUIT                     ? Shutdown::immediate
                                   : shutdown_ >= Shutdown::graceful ? Shutdown::fast
                                                                     : Shutdown::graceful;
            pending_shutdown_ = std::max(pending_shutdown_, asked);
        }
        if (sig == SIGTTIN) ++pending_scale_;
        if (sig == SIGTTOU) --pending_scale_;
        if (sig == SIGUSR1) pending_stats_ = true;
        if (sig == SIGHUP) pending_reload_ = true;
        wait_for_signal();
        process_requests();
    });
}

void Supervisor::wait_for_tick() {
    // A short stats interval needs a tick as short, or the file lags by a whole tick.
    const auto stats = std::chrono::milliseconds(config_.supervisor.stats_interval_ms);
    tick_.expires_after(std::min<std::chrono::milliseconds>(kTick, stats));
    tick_.async_wait([this](const boost::system::error_code& error) {
        if (error) return;
        process_requests();
        if (state_ != State::stopped) wait_for_tick();
    });
}

void Supervisor::feed_watchdog() {
    const auto interval = systemd_.watchdog_interval();
    if (!interval) return;
    systemd_.notify("WATCHDOG=1");
    watchdog_.expires_after(*interval);
    watchdog_.async_wait([this](const boost::system::error_code& error) {
        if (!error && state_ != State::stopped) feed_watchdog();
    });
}

bool Supervisor::workers_settled() const {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        const WorkerSlot& s = slots_[i];
        if (s.replacing || (s.wanted && s.pid <= 0)) return false;
        if (s.pid > 0 && segment_.slot(i).state.load() != static_cast<std::uint64_t>(WorkerState::ready))
            return false;
    }
    return true;
}

void Supervisor::notify_ready_when_settled() {
    if (ready_notified_ || shutdown_ != Shutdown::none || !systemd_.enabled()) return;
    const bool replacements_due =
        std::any_of(slots_.begin(), slots_.end(), [](const WorkerSlot& s) { return s.replace; });
    if (replacements_due || !workers_settled()) return;
    systemd_.notify("READY=1");
    ready_notified_ = true;
    spdlog::debug("supervisor: told systemd READY=1");
}

void Supervisor::process_requests() {
    process_shutdown_request();
    process_child_exits();
    if (pending_reload_ && shutdown_ == Shutdown::none) reload();
    pending_reload_ = false;
    process_scaling();
    process_replacements();
    check_heartbeats();
    if (pending_stats_ || Clock::now() >= next_stats_at_) {
        if (pending_stats_) reopen_log();
        pending_stats_ = false;
        write_stats();
    }
    launch_missing_workers();
    notify_ready_when_settled();
    if (shutdown_ != Shutdown::none && !any_alive()) {
        set_state(State::stopped);
        io_.stop();
    }
}

void Supervisor::process_shutdown_request() {
    Shutdown requested = std::exchange(pending_shutdown_, Shutdown::none);
    if (requested == Shutdown::none && shutdown_ == Shutdown::graceful &&
        Clock::now() >= shutdown_deadline_) {
        spdlog::warn("supervisor: graceful_timeout_s {} passed; killing the workers left",
                     config_.supervisor.graceful_timeout_s);
        requested = Shutdown::fast;
    }
    if (requested <= shutdown_) return;  // shutdown only escalates
    if (shutdown_ == Shutdown::none) systemd_.notify("STOPPING=1");
    shutdown_ = requested;
    set_state(State::draining);
    if (requested == Shutdown::graceful) {
        shutdown_deadline_ = Clock::now() + std::chrono::seconds(config_.supervisor.graceful_timeout_s);
        spdlog::info("supervisor: graceful shutdown; draining {} workers", view().workers.size());
        signal_workers(SIGTERM);
    } else {
        spdlog::info("supervisor: {} shutdown; killing the workers",
                     requested == Shutdown::fast ? "fast" : "immediate");
        signal_workers(SIGKILL);
    }
}

// USR1: the log file may have been rotated; reopen it here and in every worker.
void Supervisor::reopen_log() noexcept {
    if (log_.file.empty()) return;
    try {
        LogFile::redirect_stderr(log_.file);
        signal_workers(SIGUSR1);
        spdlog::info("supervisor: log file {} reopened", log_.file);
    } catch (const std::exception& e) {
        spdlog::error("supervisor: {}; logging on to the old file", e.what());
    }
}

void Supervisor::signal_workers(int sig) {
    for (const WorkerSlot& s : slots_)
        if (s.pid > 0) ::kill(s.pid, sig);
}

// The one reaper: waitpid on the pids we spawned, until none has news.
void Supervisor::process_child_exits() {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        if (slots_[i].pid <= 0) continue;
        int status = 0;
        pid_t pid = ::waitpid(slots_[i].pid, &status, WNOHANG);
        if (pid == slots_[i].pid || (pid < 0 && errno == ECHILD)) on_child_exit(i, status);
    }
}

void Supervisor::on_child_exit(std::size_t index, int status) {
    WorkerSlot& s = slots_[index];
    ShmWorkerSlot& shm = segment_.slot(index);
    bool expected = shutdown_ != Shutdown::none || !s.wanted || s.replacing;
    spdlog::log(expected ? spdlog::level::info : spdlog::level::warn,
                "worker {} (pid {}) {}", index, s.pid, describe(status));
    retired_.fold(shm);
    queue_.release_claims(index, s.pid, shm,
                          "worker " + std::to_string(s.pid) + " " + describe(status));
    // The slot's writer is gone; clearing it for the next generation is the one
    // write the supervisor ever makes to a slot.
    std::memset(static_cast<void*>(&shm), 0, sizeof(ShmWorkerSlot));
    s.pid = 0;
    if (shutdown_ != Shutdown::none || !s.wanted) return;
    if (s.replacing) {  // drained for a reload: its successor starts now
        s.replacing = false;
        s.crashes = 0;
        s.next_spawn_at = Clock::now();
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == exit_codes::kConfigError) {
        spdlog::error("worker {} reported a configuration error; not respawning it", index);
        s.wanted = false;
        --config_.supervisor.workers;  // what the stats and TTOU count from
        bool none_left = std::none_of(slots_.begin(), slots_.end(),
                                      [](const WorkerSlot& w) { return w.wanted; });
        if (none_left) {
            exit_code_ = exit_codes::kConfigError;
            pending_shutdown_ = std::max(pending_shutdown_, Shutdown::graceful);
        }
        return;
    }
    auto now = Clock::now();
    s.crashes = now - s.started_at >= kStableRun ? 1 : s.crashes + 1;
    auto min = std::chrono::milliseconds(config_.supervisor.restart_backoff_min_ms);
    auto max = std::chrono::milliseconds(config_.supervisor.restart_backoff_max_ms);
    std::chrono::milliseconds backoff = std::min(max, min * (std::int64_t{1} << std::min(s.crashes - 1, 20)));
    s.next_spawn_at = now + backoff;
    if (backoff == max)
        spdlog::error("worker slot {} keeps crashing ({} times); next try in {} ms", index,
                      s.crashes, backoff.count());
}

void Supervisor::check_heartbeats() {
    if (shutdown_ != Shutdown::none) return;
    std::uint64_t now = monotonic_ns();
    auto limit = static_cast<std::uint64_t>(config_.supervisor.worker_timeout_s) * 1'000'000'000ULL;
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        if (slots_[i].pid <= 0) continue;
        std::uint64_t beat = segment_.slot(i).heartbeat_ns.load(std::memory_order_relaxed);
        if (beat == 0 || beat > now || now - beat <= limit) continue;
        spdlog::error("worker {} (pid {}) sent no heartbeat for {} s; killing it", i,
                      slots_[i].pid, config_.supervisor.worker_timeout_s);
        ::kill(slots_[i].pid, SIGKILL);
        segment_.slot(i).heartbeat_ns.store(0);  // one kill per hang
    }
}

// HUP: the configuration is read and validated again; on any error the old one
// stays and the reason is logged. On success it is published in the segment and
// the workers are replaced one at a time, each new one reading it at start.
void Supervisor::reload() {
    if (!reload_) return;
    systemd_.reloading();
    ready_notified_ = false;  // READY=1 again once the replacements are done (or none came)
    Config next;
    try {
        next = reload_();
        segment_.replace_config(ConfigPrinter::to_toml(next));
    } catch (const ConfigError& e) {
        for (const auto& d : e.diagnostics()) spdlog::error("supervisor: reload: {}", d.to_string());
        spdlog::error("supervisor: reload failed; keeping the old configuration");
        return;
    } catch (const std::exception& e) {
        spdlog::error("supervisor: reload failed ({}); keeping the old configuration", e.what());
        return;
    }
    pending_scale_ += static_cast<int>(next.supervisor.workers - config_.supervisor.workers);
    next.supervisor.workers = config_.supervisor.workers;  // process_scaling() moves it
    config_ = std::move(next);
    health_.set_config(config_);
    // Before the new workers come: any sleeper may now serve another queue.
    segment_.header().wake.queues.store(std::max<std::uint32_t>(
        segment_.header().wake.queues.load(), static_cast<std::uint32_t>(queue_shares(config_).size())));
    scheduler_.reset();  // its thread ends first: one scheduler at a time
    scheduler_.emplace(config_);
    std::size_t n = 0;
    for (WorkerSlot& s : slots_)
        if (s.pid > 0) {
            s.replace = true;
            ++n;
        }
    spdlog::info("supervisor: configuration reloaded from {}; replacing {} workers one at a time",
                 config_.source, n);
}

// One worker at a time: the next is told to drain only when no replacement is
// under way and every live worker is ready, so capacity never drops by more than one.
void Supervisor::process_replacements() {
    if (shutdown_ != Shutdown::none || !workers_settled()) return;
    for (WorkerSlot& s : slots_) {
        if (!s.replace || s.pid <= 0) continue;
        s.replace = false;
        s.replacing = true;
        ::kill(s.pid, SIGTERM);
        return;
    }
}

void Supervisor::process_scaling() {
    for (; pending_scale_ > 0; --pending_scale_) {
        auto free = std::find_if(slots_.begin(), slots_.end(),
                                 [](const WorkerSlot& s) { return !s.wanted && s.pid == 0; });
        if (free == slots_.end()) break;
        free->wanted = true;
        free->crashes = 0;
        ++config_.supervisor.workers;
        spdlog::info("supervisor: TTIN; now {} workers", config_.supervisor.workers);
    }
    for (; pending_scale_ < 0; ++pending_scale_) {
        if (config_.supervisor.workers <= 1) break;
        auto last = std::find_if(slots_.rbegin(), slots_.rend(),
                                 [](const WorkerSlot& s) { return s.wanted; });
        if (last == slots_.rend()) break;  // every slot stopped already (configuration errors)
        last->wanted = false;
        if (last->pid > 0) ::kill(last->pid, SIGTERM);
        --config_.supervisor.workers;
        spdlog::info("supervisor: TTOU; now {} workers", config_.supervisor.workers);
    }
}

void Supervisor::launch_missing_workers() {
    if (shutdown_ != Shutdown::none) return;
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        WorkerSlot& s = slots_[i];
        if (!s.wanted || s.pid > 0 || Clock::now() < s.next_spawn_at) continue;
        spawn(i);
        std::this_thread::sleep_for(kSpawnStagger);  // not every worker connects at once
    }
}

void Supervisor::spawn(std::size_t index) {
    namespace bp = boost::process;
    WorkerSlot& s = slots_[index];
    s.generation += 1;
    if (s.generation > 1) ++restarts_total_;
    try {
        std::vector<std::string> args = log_.as_arguments();
        args.insert(args.end(), {"worker", "--shm", segment_.name(), "--slot",
                                 std::to_string(index), "--generation",
                                 std::to_string(s.generation)});
        segment_.reserve_slot(index);
        // argv[0] is the path, not /proc/self/fd/N, so ps shows what runs.
        char* argv0 = self_.path().empty() ? nullptr : const_cast<char*>(self_.path().c_str());
        bp::child child(bp::exe = self_.exec_path(), bp::args = args,
                        bp::extend::on_exec_setup = [argv0](auto& exec) {
                            if (argv0) const_cast<char**>(exec.cmd_line)[0] = argv0;  // the child's copy
                            child_setup::close_on_exec_above_stderr();
                        });
        s.pid = child.id();
        child.detach();  // we reap; ~child() must not kill or wait
        s.started_at = Clock::now();
        spdlog::info("worker {} (pid {}) spawned, generation {}", index, s.pid, s.generation);
    } catch (const std::exception& e) {
        spdlog::error("worker {}: cannot spawn {}: {}", index, self_.path(), e.what());
        s.next_spawn_at = Clock::now() + std::chrono::seconds(1);
    }
}

bool Supervisor::any_alive() const {
    return std::any_of(slots_.begin(), slots_.end(), [](const WorkerSlot& s) { return s.pid > 0; });
}

SupervisorView Supervisor::view() const {
    SupervisorView v;
    v.pid = getpid();
    v.state = to_string(state_);
    v.uptime_seconds = std::chrono::duration<double>(Clock::now() - started_at_).count();
    v.workers_configured = static_cast<std::size_t>(config_.supervisor.workers);
    v.restarts_total = restarts_total_;
    v.jobs_rescued = queue_.rescued_total();
    v.wake = {{"mode", waker_.mode()},
              {"notifications_total", waker_.notifications_total()},
              {"wakes_total", waker_.wakes_total()}};
    for (std::size_t i = 0; i < slots_.size(); ++i)
        if (slots_[i].pid > 0) v.workers.push_back({i, slots_[i].pid, slots_[i].generation});
    return v;
}

void Supervisor::write_stats() noexcept {
    next_stats_at_ = Clock::now() + std::chrono::milliseconds(config_.supervisor.stats_interval_ms);
    try {
        SupervisorView v = view();
        // Exact at the end: every dead worker's claims put back first.
        v.queue_depth = state_ == State::stopped ? queue_.final_depth() : queue_.depth();
        v.queues = queue_.queues();
        v.schedules = scheduler_->stats();
        v.health = health_.reports();
        nlohmann::json doc = StatsWriter::document(v, segment_, retired_);
        // /metrics and /healthz first: they must not depend on the file (a full disk).
        for (const auto& listener : stats_listeners_) listener(doc);
        const std::string line = progress_.update(doc);
        if (systemd_.enabled()) systemd_.notify("STATUS=" + line);
        StatsWriter::write(config_.supervisor.stats_file, doc);
    } catch (const std::exception& e) {
        spdlog::error("supervisor: stats: {}", e.what());
    }
}

}  // namespace dbsup
