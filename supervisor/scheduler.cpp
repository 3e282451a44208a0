#include "supervisor/scheduler.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "shared/background_thread.hpp"
#include "shared/db/database_manager.hpp"
#include "shared/queue/schedule_ledger.hpp"

namespace dbsup {
namespace {

constexpr auto kRetryEvery = std::chrono::seconds(1);
constexpr auto kLongestSleep = std::chrono::seconds(60);
constexpr auto kClockSyncEvery = std::chrono::seconds(60);

}  // namespace

Scheduler::Scheduler(const Config& config, bool start)
    : queue_(Queue::from_config(config)), database_(config.queue.database) {
    for (const auto& [name, schedule] : config.schedules)
        entries_.push_back(std::make_unique<Entry>(schedule, ScheduleTimes(schedule)));
    if (start && !entries_.empty()) thread_ = start_background_thread([this] { run(); });
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::stop() noexcept {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
}

void Scheduler::run() noexcept {
    auto sleep = std::chrono::milliseconds(0);
    auto next_sync = std::chrono::steady_clock::now();
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            if (wake_.wait_for(lock, sleep, [this] { return stopping_; })) return;
        }
        try {
            Session& session = DatabaseManager::instance().session(database_);
            if (std::chrono::steady_clock::now() >= next_sync) {
                queue_.sync_clock(session);
                next_sync = std::chrono::steady_clock::now() + kClockSyncEvery;
            }
            fire_due(session, queue_.db_now());
            error_logged_ = false;
            sleep = sleep_time();
        } catch (const std::exception& e) {
            if (!error_logged_)
                spdlog::warn("scheduler: cannot enqueue scheduled jobs yet ({}); trying again "
                             "every second",
                             e.what());
            error_logged_ = true;
            sleep = kRetryEvery;
        }
    }
}

std::size_t Scheduler::fire_due(Session& session, std::int64_t now_ms) {
    std::size_t enqueued = 0;
    for (auto& entry : entries_)
        if (now_ms >= entry->next_ms.load()) enqueued += fire(session, *entry, now_ms);
    return enqueued;
}

std::size_t Scheduler::fire(Session& session, Entry& entry, std::int64_t now_ms) {
    const std::string& name = entry.config.name;
    std::size_t enqueued = 0;
    ScheduleTimes::Due due;
    // Immediate: on SQLite two supervisors' read-then-update must not both read.
    session.begin(Connection::BeginMode::immediate);
    try {
        const std::int64_t last = ScheduleLedger::last_firing(session, name, now_ms);
        due = entry.times.due(last, now_ms);
        if (due.advance_to && ScheduleLedger::advance(session, name, last, *due.advance_to, now_ms))
            enqueued = enqueue(session, entry, due.enqueue);
        else
            due.skipped = 0;  // another supervisor handled these firings
        session.commit();
    } catch (...) {
        session.rollback();
        throw;
    }
    if (due.skipped > 0)
        spdlog::info("schedule {}: {} missed firing(s) skipped (catch_up = \"{}\")", name,
                     due.skipped, entry.config.catch_up);
    entry.enqueued += enqueued;
    entry.next_ms = entry.times.next_after(now_ms).value_or(kNever);
    return enqueued;
}

std::size_t Scheduler::enqueue(Session& session, const Entry& entry,
                               const std::vector<std::int64_t>& firings) const {
    for (std::int64_t at : firings) {
        NewJob job;
        job.task = entry.config.task;
        job.payload = entry.config.payload;
        job.queue = entry.config.queue;
        job.priority = entry.config.priority;
        job.run_at_ms = at;
        // Names the firing in `jobs list/show`; the ledger already made it unique.
        job.unique_key = "schedule:" + entry.config.name + ":" + std::to_string(at);
        queue_.enqueue_unique(session, job);
    }
    return firings.size();
}

std::optional<std::int64_t> Scheduler::next_due() const {
    std::optional<std::int64_t> next;
    for (const auto& entry : entries_) {
        const std::int64_t at = entry->next_ms.load();
        if (at != kNever) next = std::min(next.value_or(at), at);
    }
    return next;
}

std::chrono::milliseconds Scheduler::sleep_time() const {
    const std::optional<std::int64_t> next = next_due();
    if (!next) return kLongestSleep;
    // +1: db_now() is whole milliseconds, and a firing counts once now >= it.
    const std::int64_t wait = std::max<std::int64_t>(0, *next - queue_.db_now() + 1);
    return std::min<std::chrono::milliseconds>(std::chrono::milliseconds(wait), kLongestSleep);
}

nlohmann::json Scheduler::stats() const {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& entry : entries_) {
        const std::int64_t next = entry->next_ms.load();
        out[entry->config.name] = {
            {"enqueued_total", entry->enqueued.load()},
            {"next_at_ms", next == kAtOnce || next == kNever ? nlohmann::json() : nlohmann::json(next)}};
    }
    return out;
}

}  // namespace dbsup
