// Builds the stats document (DESIGN section 6, schema 1) from the supervisor's
// own view of its workers plus what they wrote into shared memory, and writes
// it atomically (temp file + fsync + rename) as JSON and Prometheus text.
// Counters of workers that exited are folded into `retired` first, so no
// aggregated counter ever goes backwards.
#pragma once

#include <array>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <sys/types.h>

#include "shared/metrics/shm_segment.hpp"

namespace dbsup {

/// The figures of one dynamic label (a task, a query label).
struct LabelTotals {
    std::array<std::uint64_t, ShmLabelRow::kCounters> counts{};
    HistogramSnapshot seconds;
};

/// Totals of workers that are gone: added to every later document.
struct RetiredTotals {
    std::array<std::uint64_t, static_cast<std::size_t>(Counter::kCount)> counters{};
    std::array<HistogramSnapshot, static_cast<std::size_t>(Timer::kCount)> timers{};
    std::map<std::string, LabelTotals> tasks;
    std::map<std::string, LabelTotals> queries;
    std::map<std::string, LabelTotals> errors;  // by error class
    std::map<std::string, LabelTotals> breakers;  // totals only; states come from live workers
    std::map<std::string, LabelTotals> pools;  // totals only; gauges come from live workers

    /// Adds a slot's figures (its worker has exited).
    void fold(const ShmWorkerSlot& slot);
};

/// What the supervisor knows that is not in the segment.
struct SupervisorView {
    pid_t pid = 0;
    std::string state;
    double uptime_seconds = 0;
    std::size_t workers_configured = 0;
    std::uint64_t restarts_total = 0;
    std::uint64_t jobs_rescued = 0;  // claims of dead workers the supervisor took back
    nlohmann::json queue_depth = nlohmann::json::object();  // jobs by state, when known
    nlohmann::json queues = nlohmann::json::object();  // QueueKeeper::queues()
    nlohmann::json health = nlohmann::json::object();       // HealthReport::to_json by database
    nlohmann::json wake = nlohmann::json::object();         // the QueueWaker's mode and totals
    nlohmann::json schedules = nlohmann::json::object();    // Scheduler::stats()
    struct Worker {
        std::size_t slot;
        pid_t pid;
        std::uint64_t generation;
    };
    std::vector<Worker> workers;  // the live ones
};

class StatsWriter {
public:
    static nlohmann::json document(const SupervisorView& view, const ShmSegment& segment,
                                   const RetiredTotals& retired);
    static std::string prometheus(const nlohmann::json& document);
    /// Writes path and path-with-.prom atomically. @throws std::runtime_error naming the file.
    static void write(const std::string& path, const nlohmann::json& document);
    /// A Prometheus label value: backslash, quote and newline escaped as the
    /// text exposition format says, bytes that are not UTF-8 replaced (U+FFFD).
    static std::string label_value(std::string_view raw);
    /// "x/stats.json" -> "x/stats.prom".
    static std::string prom_path(const std::string& json_path);
};

}  // namespace dbsup
