#include "supervisor/stats_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "shared/clock.hpp"
#include "shared/utf8.hpp"

namespace dbsup {
namespace {

using nlohmann::json;

constexpr const char* kWorkerStates[] = {"empty", "starting", "ready", "draining", "stopped"};

std::uint64_t rss_bytes(pid_t pid) {
    std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
    std::uint64_t size = 0, resident = 0;
    statm >> size >> resident;
    return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

json seconds(const HistogramSnapshot& h) {
    return {{"count", h.count},
            {"sum", static_cast<double>(h.sum_ns) / 1e9},
            {"p50", h.quantile_seconds(0.50)},
            {"p95", h.quantile_seconds(0.95)},
            {"p99", h.quantile_seconds(0.99)}};
}

void fold_labels(const ShmLabelTable& table, std::map<std::string, LabelTotals>& into,
                 std::size_t first_column = 0) {
    for (std::size_t r = 0; r < table.published(); ++r) {
        LabelTotals& t = into[table.rows[r].read_name()];
        for (std::size_t c = first_column; c < t.counts.size(); ++c)
            t.counts[c] += table.rows[r].counters[c].load(std::memory_order_relaxed);
        t.seconds.add(table.rows[r].seconds.snapshot());
    }
}

json labels(const std::map<std::string, LabelTotals>& totals,
            const std::array<const char*, 3>& names) {
    json out = json::object();
    for (const auto& [name, t] : totals) {
        json row;
        for (std::size_t c = 0; c < names.size(); ++c) row[names[c]] = t.counts[c];
        row["seconds"] = seconds(t.seconds);
        out[name] = row;
    }
    return out;
}

void write_atomically(const std::string& path, const std::string& text) {
    // mkostemp: a fresh name opened with O_EXCL, so a symlink or file planted
    // beside the stats file is never written through.
    std::string tmp = path + ".tmp.XXXXXX";
    int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(errno));
    bool ok = ::fchmod(fd, 0644) == 0 &&
              ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
              ::fsync(fd) == 0;
    ok = ::close(fd) == 0 && ok;
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
        std::string why = std::strerror(errno);
        ::unlink(tmp.c_str());
        throw std::runtime_error("cannot write " + path + ": " + why);
    }
}

// A query label's total is its histogram's count (see ShmQueryObserver).
json query_labels(const std::map<std::string, LabelTotals>& totals) {
    json out = labels(totals, {"total", "errors_total", "slow_total"});
    for (const auto& [name, t] : totals) out[name]["total"] = t.seconds.count;
    return out;
}

json error_classes(const std::map<std::string, LabelTotals>& totals) {
    json out = json::object();
    for (const auto& [name, t] : totals) out[name] = t.counts[0];
    return out;
}

}  // namespace

void RetiredTotals::fold(const ShmWorkerSlot& slot) {
    for (std::size_t i = 0; i < counters.size(); ++i)
        counters[i] += slot.counters[i].load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < timers.size(); ++i) timers[i].add(slot.timers[i].snapshot());
    fold_labels(slot.tasks, tasks);
    fold_labels(slot.queries, queries);
    fold_labels(slot.errors, errors);
    fold_labels(slot.breakers, breakers, static_cast<std::size_t>(BreakerColumn::opened));
    fold_labels(slot.pools, pools, kFirstPoolTotal);
}

namespace {

// Per database: gauges summed over the live workers, totals over every worker
// that ever ran (the retired ones included), waits as a histogram.
json pools_json(const ShmSegment& segment, const std::vector<SupervisorView::Worker>& workers,
                const RetiredTotals& totals) {
    std::map<std::string, std::array<std::uint64_t, kFirstPoolTotal>> gauges;
    for (const auto& w : workers) {
        const ShmLabelTable& t = segment.slot(w.slot).pools;
        for (std::size_t r = 0; r < t.published(); ++r)
            for (std::size_t c = 0; c < kFirstPoolTotal; ++c)
                gauges[t.rows[r].read_name()][c] += t.rows[r].counters[c].load();
    }
    constexpr const char* kNames[] = {"size", "in_use", "idle", "overflow", "checkouts_total",
                                      "timeouts_total", "opened_total", "closed_total",
                                      "recycled_total", "preping_failures_total",
                                      "statement_cache_hits_total",
                                      "statement_cache_misses_total",
                                      "statement_cache_evictions_total"};
    json out = json::object();
    for (const auto& [name, t] : totals.pools) {
        json row;
        for (std::size_t c = 0; c < std::size(kNames); ++c)
            row[kNames[c]] = c < kFirstPoolTotal ? gauges[name][c] : t.counts[c];
        row["wait_seconds"] = seconds(t.seconds);
        out[name] = row;
    }
    return out;
}

// Per database: the worst state among the live workers (one worker's open
// breaker is news), totals over every worker that ever ran.
json breakers_json(const ShmSegment& segment, const std::vector<SupervisorView::Worker>& workers,
                   const RetiredTotals& totals) {
    constexpr const char* kStates[] = {"closed", "open", "half_open"};
    constexpr int kSeverity[] = {0, 2, 1};
    std::map<std::string, std::uint64_t> worst;
    for (const auto& w : workers) {
        const ShmLabelTable& t = segment.slot(w.slot).breakers;
        for (std::size_t r = 0; r < t.published(); ++r) {
            std::uint64_t state = t.rows[r].counters[0].load(std::memory_order_relaxed);
            if (state >= std::size(kStates)) continue;
            auto [it, added] = worst.try_emplace(t.rows[r].read_name(), state);
            if (!added && kSeverity[state] > kSeverity[it->second]) it->second = state;
        }
    }
    json out = json::object();
    for (const auto& [name, t] : totals.breakers) {
        auto found = worst.find(name);
        out[name] = {{"state", kStates[found == worst.end() ? 0 : found->second]},
                     {"opened_total", t.counts[static_cast<std::size_t>(BreakerColumn::opened)]},
                     {"rejected_total",
                      t.counts[static_cast<std::size_t>(BreakerColumn::rejected)]}};
    }
    return out;
}

// SQLite has no server to ask how busy it is: its connections and active
// queries are the workers' pools' (open connections, checked out).
json health_json(json health, const json& pools) {
    for (auto& [name, report] : health.items()) {
        if (!report["connections"].is_null() || !pools.contains(name)) continue;
        report["connections"] = pools[name]["size"];
        report["active_queries"] = pools[name]["in_use"];
    }
    return health;
}

// Every database's prepared statement caches together; hit_ratio 0 before any lookup.
json statement_cache_json(const json& pools) {
    std::uint64_t hits = 0, misses = 0, evictions = 0;
    for (const auto& [name, pool] : pools.items()) {
        hits += pool["statement_cache_hits_total"].get<std::uint64_t>();
        misses += pool["statement_cache_misses_total"].get<std::uint64_t>();
        evictions += pool["statement_cache_evictions_total"].get<std::uint64_t>();
    }
    double lookups = static_cast<double>(hits + misses);
    return {{"hits_total", hits},
            {"misses_total", misses},
            {"evictions_total", evictions},
            {"hit_ratio", lookups > 0 ? static_cast<double>(hits) / lookups : 0.0}};
}

json up_gauges(const json& health) {
    json out = json::object();
    for (const auto& [name, report] : health.items()) out[name]["up"] = report["ok"].get<bool>() ? 1 : 0;
    return out;
}

}  // namespace

json StatsWriter::document(const SupervisorView& view, const ShmSegment& segment,
                           const RetiredTotals& retired) {
    RetiredTotals totals = retired;
    json workers = json::array();
    std::uint64_t now = monotonic_ns();
    for (const auto& w : view.workers) {
        const ShmWorkerSlot& slot = segment.slot(w.slot);
        totals.fold(slot);
        std::uint64_t state = slot.state.load();
        std::uint64_t heartbeat = slot.heartbeat_ns.load();
        workers.push_back(
            {{"slot", w.slot},
             {"pid", w.pid},
             {"generation", w.generation},
             {"state", state < std::size(kWorkerStates) ? kWorkerStates[state] : "unknown"},
             {"heartbeat_age_seconds",
              heartbeat && heartbeat <= now ? static_cast<double>(now - heartbeat) / 1e9 : 0.0},
             {"jobs_succeeded_total", slot.get(Counter::jobs_succeeded)},
             {"rss_bytes", rss_bytes(w.pid)}});
    }
    auto count = [&](Counter c) { return totals.counters[static_cast<std::size_t>(c)]; };
    auto timer = [&](Timer t) { return seconds(totals.timers[static_cast<std::size_t>(t)]); };
    json pools = pools_json(segment, view.workers, totals);
    HistogramSnapshot all_queries = totals.timers[static_cast<std::size_t>(Timer::query)];
    for (const auto& [label, t] : totals.queries) all_queries.add(t.seconds);
    return {
        {"schema", 1},
        {"generated_at", utc_now()},
        {"supervisor",
         {{"pid", view.pid},
          {"state", view.state},
          {"uptime_seconds", view.uptime_seconds},
          {"workers_configured", view.workers_configured},
          {"workers_alive", view.workers.size()},
          {"restarts_total", view.restarts_total}}},
        {"workers", workers},
        {"jobs",
         {{"claimed_total", count(Counter::jobs_claimed)},
          {"empty_claims_total", count(Counter::claims_empty)},
          {"succeeded_total", count(Counter::jobs_succeeded)},
          {"retried_total", count(Counter::jobs_retried)},
          {"dead_total", count(Counter::jobs_dead)},
          {"rescued_total", count(Counter::jobs_rescued) + view.jobs_rescued},
          {"released_total", count(Counter::jobs_released)},
          {"snoozed_total", count(Counter::jobs_snoozed)},
          {"run_seconds", timer(Timer::job_run)},
          {"wait_seconds", timer(Timer::job_wait)},
          {"by_task", labels(totals.tasks, {"succeeded_total", "retried_total", "dead_total"})}}},
        {"queue", view.queue_depth},
        {"queues", view.queues},
        {"wake", view.wake},
        {"schedules", view.schedules},
        {"pools", pools},
        {"statement_cache", statement_cache_json(pools)},
        {"bulk",
         {{"inserted_rows_total", count(Counter::bulk_rows_inserted)},
          {"updated_rows_total", count(Counter::bulk_rows_updated)},
          {"deleted_rows_total", count(Counter::bulk_rows_deleted)}}},
        {"queries",
         {{"total", all_queries.count},
          {"errors_total", count(Counter::query_errors)},
          {"slow_total", count(Counter::slow_queries)},
          {"seconds", seconds(all_queries)},
          {"by_label", query_labels(totals.queries)},
          {"errors_by_class", error_classes(totals.errors)}}},
        {"transactions",
         {{"committed_total", count(Counter::transactions_committed)},
          {"rolled_back_total", count(Counter::transactions_rolled_back)},
          {"retried_total", count(Counter::transactions_retried)},
          {"seconds", timer(Timer::transaction)}}},
        {"circuit_breakers", breakers_json(segment, view.workers, totals)},
        {"health", health_json(view.health, pools)}};
}

std::string StatsWriter::label_value(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size();) {
        const std::size_t n = utf8::char_length(raw.substr(i));
        if (n == 0) {  // not UTF-8: the replacement character, as the exposition format needs UTF-8
            out += "\xEF\xBF\xBD";
            ++i;
            continue;
        }
        const char c = raw[i];
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n')
            out += "\\n";
        else
            out.append(raw.substr(i, n));
        i += n;
    }
    return out;
}

std::string StatsWriter::prometheus(const json& doc) {
    std::ostringstream out;
    auto gauge = [&](const char* name, const char* help, const json& value) {
        out << "# HELP dbsup_" << name << " " << help << "\n# TYPE dbsup_" << name
            << (std::string(name).ends_with("_total") ? " counter" : " gauge") << "\n"
            << "dbsup_" << name << " " << value.dump() << "\n";
    };
    const json& s = doc["supervisor"];
    gauge("uptime_seconds", "Seconds since the supervisor started.", s["uptime_seconds"]);
    gauge("workers_configured", "Workers the supervisor keeps running.", s["workers_configured"]);
    gauge("workers_alive", "Worker processes alive now.", s["workers_alive"]);
    gauge("worker_restarts_total", "Workers respawned after an exit.", s["restarts_total"]);
    for (const char* key : {"claimed_total", "succeeded_total", "retried_total", "dead_total",
                            "released_total", "rescued_total", "empty_claims_total",
                            "snoozed_total"}) {
        std::string name = std::string("jobs_") + key;
        gauge(name.c_str(), "Jobs, all workers.", doc["jobs"][key]);
    }
    for (const auto& [state, n] : doc["queue"].items())
        out << (state == doc["queue"].begin().key()
                    ? "# HELP dbsup_queue_jobs Jobs in the queue table by state.\n"
                      "# TYPE dbsup_queue_jobs gauge\n"
                    : "")
            << "dbsup_queue_jobs{state=\"" << label_value(state) << "\"} " << n.dump() << "\n";
    const json& queues = doc.value("queues", json::object());
    const json& paused = queues.value("paused", json::array());
    if (!paused.empty())
        out << "# HELP dbsup_queue_paused Queues paused by `jobs pause`: nothing claims their jobs.\n"
               "# TYPE dbsup_queue_paused gauge\n";
    for (const json& name : paused)
        out << "dbsup_queue_paused{queue=\"" << label_value(name.get<std::string>()) << "\"} 1\n";
    const json& oldest = queues.value("oldest_waiting_seconds", json::object());
    if (!oldest.empty())
        out << "# HELP dbsup_queue_oldest_waiting_seconds How long the oldest due job has waited.\n"
               "# TYPE dbsup_queue_oldest_waiting_seconds gauge\n";
    for (const auto& [name, seconds] : oldest.items())
        out << "dbsup_queue_oldest_waiting_seconds{queue=\"" << label_value(name) << "\"} "
            << seconds.dump() << "\n";
    const json& table = queues.value("table", json::object());
    if (table.contains("bytes")) {
        gauge("queue_table_bytes", "The jobs table's size on disk, indexes included.",
              table["bytes"]);
        gauge("queue_table_dead_tuples", "The jobs table's dead tuples awaiting vacuum.",
              table["dead_tuples"]);
    }
    // Labelled series: one HELP/TYPE per metric, then one line per label value.
    auto labelled = [&](const std::string& metric, const char* help, const json& rows,
                        const char* label, const char* field) {
        if (rows.empty()) return;
        out << "# HELP dbsup_" << metric << " " << help << "\n# TYPE dbsup_" << metric
            << (metric.ends_with("_total") ? " counter" : " gauge") << "\n";
        for (const auto& [key, row] : rows.items())
            out << "dbsup_" << metric << "{" << label << "=\"" << label_value(key) << "\"} "
                << row[field].dump() << "\n";
    };
    for (const char* f : {"size", "in_use", "idle", "overflow", "checkouts_total",
                          "timeouts_total", "opened_total", "closed_total",
                          "statement_cache_hits_total", "statement_cache_misses_total",
                          "statement_cache_evictions_total"})
        labelled(std::string("pool_") + f, "Connection pool figure, all workers.", doc["pools"],
                 "database", f);
    labelled("schedule_enqueued_total", "Jobs this supervisor enqueued for a schedule.",
             doc.value("schedules", json::object()), "schedule", "enqueued_total");
    for (const char* f : {"succeeded_total", "retried_total", "dead_total"})
        labelled(std::string("task_jobs_") + f, "Jobs by task.", doc["jobs"]["by_task"], "task",
                 f);
    gauge("queries_total", "Queries run.", doc["queries"]["total"]);
    gauge("query_errors_total", "Queries that failed.", doc["queries"]["errors_total"]);
    gauge("slow_queries_total", "Queries slower than monitoring.slow_query_ms.",
          doc["queries"]["slow_total"]);
    for (const char* f : {"total", "errors_total", "slow_total"})
        labelled(std::string("label_queries_") + f, "Queries by operation:table:service.",
                 doc["queries"]["by_label"], "query", f);
    if (!doc["queries"]["errors_by_class"].empty()) {
        out << "# HELP dbsup_query_errors_by_class_total Failed queries by error class.\n"
               "# TYPE dbsup_query_errors_by_class_total counter\n";
        for (const auto& [cls, n] : doc["queries"]["errors_by_class"].items())
            out << "dbsup_query_errors_by_class_total{class=\"" << label_value(cls) << "\"} "
                << n.dump()
                << "\n";
    }
    for (const char* f : {"hits_total", "misses_total", "evictions_total"})
        gauge((std::string("statement_cache_") + f).c_str(),
              "Prepared statement cache figure, all databases.", doc["statement_cache"][f]);
    for (const char* f : {"inserted_rows_total", "updated_rows_total", "deleted_rows_total"})
        gauge((std::string("bulk_") + f).c_str(), "Rows touched by bulk operations.",
              doc["bulk"][f]);
    gauge("transactions_committed_total", "Transactions committed.",
          doc["transactions"]["committed_total"]);
    for (const char* f : {"opened_total", "rejected_total"})
        labelled(std::string("circuit_breaker_") + f, "Circuit breaker figure, all workers.",
                 doc["circuit_breakers"], "database", f);
    labelled("database_up", "1 when the last health check of the database passed.",
             up_gauges(doc["health"]), "database", "up");
    labelled("database_health_latency_seconds", "Round trip of the last health check.",
             doc["health"], "database", "latency_seconds");
    gauge("transactions_rolled_back_total", "Transactions rolled back.",
          doc["transactions"]["rolled_back_total"]);
    return out.str();
}

std::string StatsWriter::prom_path(const std::string& json_path) {
    std::string base = json_path.ends_with(".json")
                           ? json_path.substr(0, json_path.size() - 5) : json_path;
    return base + ".prom";
}

void StatsWriter::write(const std::string& path, const json& document) {
    // Names come from data (task names in the jobs table): bytes that are not
    // UTF-8 become U+FFFD instead of failing every later write.
    write_atomically(path, document.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
    write_atomically(prom_path(path), prometheus(document));
}

}  // namespace dbsup
