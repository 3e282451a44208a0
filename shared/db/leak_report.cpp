#include "shared/db/leak_report.hpp"

#include <spdlog/spdlog.h>

namespace dbsup {

void LeakReport::log(const std::string& pool, std::chrono::milliseconds limit,
                     const std::vector<LeakReport>& leaks) {
    for (const LeakReport& leak : leaks)
        spdlog::warn("pool '{}': connection #{} held for {} ms by '{}' (leak_detection_ms {}); "
                     "possible leak",
                     pool, leak.id, leak.held_ms, leak.holder, limit.count());
}

}  // namespace dbsup
