#include "supervisor/progress_line.hpp"

#include <unistd.h>

#include <cstdio>

namespace dbsup {

ProgressLine::ProgressLine() : enabled_(::isatty(STDERR_FILENO) == 1) {}

std::string ProgressLine::update(const nlohmann::json& stats) {
    auto now = std::chrono::steady_clock::now();
    auto done = stats["jobs"]["succeeded_total"].get<std::uint64_t>();
    double seconds = std::chrono::duration<double>(now - last_at_).count();
    double rate = seconds > 0 ? static_cast<double>(done - last_done_) / seconds : 0;
    last_done_ = done;
    last_at_ = now;
    const auto& queue = stats["queue"];
    char line[160];
    std::snprintf(line, sizeof line, "done %llu  %.0f jobs/s  workers %llu/%llu  waiting %lld  dead %lld",
                  static_cast<unsigned long long>(done), rate,
                  stats["supervisor"]["workers_alive"].get<unsigned long long>(),
                  stats["supervisor"]["workers_configured"].get<unsigned long long>(),
                  queue.value("available", 0LL), queue.value("dead", 0LL));
    if (enabled_) {
        std::fprintf(stderr, "\r\033[K%s", line);
        std::fflush(stderr);
        shown_ = true;
    }
    return line;
}

void ProgressLine::finish() {
    if (shown_) std::fputc('\n', stderr);
    shown_ = false;
}

}  // namespace dbsup
