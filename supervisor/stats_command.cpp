#include "supervisor/stats_command.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "supervisor/cli.hpp"

namespace dbsup {
namespace {

using nlohmann::json;

json read_stats(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        throw std::runtime_error("cannot read the stats file " + path +
                                 ": is a supervisor running with this --stats-file?");
    json doc = json::parse(in, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
        throw std::runtime_error(path + " is not a stats file (not a JSON object)");
    return doc;
}

std::string ms(const json& seconds, const char* q) {
    char out[32];
    std::snprintf(out, sizeof out, "%.2fms", seconds.value(q, 0.0) * 1000);
    return out;
}

unsigned long long n(const json& row, const char* key) {
    return row.value(key, 0ULL);
}

void print_table(const json& d, double age_seconds) {
    const json& s = d["supervisor"];
    std::printf("supervisor pid %lld  %s  up %.0fs  workers %llu/%llu  restarts %llu  "
                "(written %.1fs ago)\n",
                s.value("pid", 0LL), s.value("state", "?").c_str(), s.value("uptime_seconds", 0.0),
                n(s, "workers_alive"), n(s, "workers_configured"), n(s, "restarts_total"),
                age_seconds);
    const json& j = d["jobs"];
    std::printf("jobs       succeeded %llu  retried %llu  dead %llu  claimed %llu  rescued %llu  "
                "released %llu  run p50 %s p99 %s\n",
                n(j, "succeeded_total"), n(j, "retried_total"), n(j, "dead_total"),
                n(j, "claimed_total"), n(j, "rescued_total"), n(j, "released_total"),
                ms(j["run_seconds"], "p50").c_str(), ms(j["run_seconds"], "p99").c_str());
    const json& q = d.value("queue", json::object());
    std::printf("queue      available %llu  running %llu  succeeded %llu  dead %llu\n\n",
                n(q, "available"), n(q, "running"), n(q, "succeeded"), n(q, "dead"));
    std::printf("%-5s %-8s %-4s %-9s %-10s %-10s %s\n", "SLOT", "PID", "GEN", "STATE", "HEARTBEAT",
                "SUCCEEDED", "RSS MiB");
    for (const json& w : d["workers"])
        std::printf("%-5llu %-8llu %-4llu %-9s %-10.1f %-10llu %.1f\n", n(w, "slot"), n(w, "pid"),
                    n(w, "generation"), w.value("state", "?").c_str(),
                    w.value("heartbeat_age_seconds", 0.0), n(w, "jobs_succeeded_total"),
                    static_cast<double>(n(w, "rss_bytes")) / (1024.0 * 1024.0));
    std::printf("\n%-12s %5s %6s %5s %8s %10s %8s %9s\n", "POOL", "SIZE", "IN USE", "IDLE",
                "OVERFLOW", "CHECKOUTS", "TIMEOUTS", "WAIT p99");
    for (const auto& [name, p] : d["pools"].items())
        std::printf("%-12s %5llu %6llu %5llu %8llu %10llu %8llu %9s\n", name.c_str(), n(p, "size"),
                    n(p, "in_use"), n(p, "idle"), n(p, "overflow"), n(p, "checkouts_total"),
                    n(p, "timeouts_total"), ms(p["wait_seconds"], "p99").c_str());
}

double age_of(const std::string& path) {
    auto written = std::filesystem::last_write_time(path);
    return std::chrono::duration<double>(std::filesystem::file_time_type::clock::now() - written)
        .count();
}

}  // namespace

int StatsCommand::run(const std::string& path, bool as_json, bool watch) {
    const bool terminal = ::isatty(STDOUT_FILENO) == 1;
    do {
        json doc = read_stats(path);
        if (watch && terminal) std::printf("\033[H\033[J");  // redraw in place
        if (as_json)
            std::cout << doc.dump(2) << "\n";
        else
            print_table(doc, age_of(path));
        std::fflush(stdout);
        if (watch) std::this_thread::sleep_for(std::chrono::seconds(1));
    } while (watch);
    return kExitOk;
}

}  // namespace dbsup
