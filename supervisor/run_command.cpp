#include "supervisor/run_command.hpp"

#include <spdlog/spdlog.h>

#include "shared/db/database_verifier.hpp"
#include "supervisor/cli.hpp"

namespace dbsup {

int RunCommand::run(const Config& config) {
    auto statuses = DatabaseVerifier::verify(config, "dbsupervisor/supervisor");
    for (const auto& s : statuses) {
        if (s.ok)
            spdlog::info("database '{}' ok: {} ({}, {:.1f} ms)", s.name, s.url, s.version,
                         s.latency_seconds * 1000);
        else if (s.degraded())
            spdlog::warn("database '{}' degraded (optional): {}: {}", s.name, s.url, s.error);
        else
            spdlog::error("database '{}' unusable: {}: {}", s.name, s.url, s.error);
    }
    if (!DatabaseVerifier::all_usable(statuses)) return kExitFailure;
    spdlog::warn("databases verified; spawning {} workers is not built into this version yet",
                 config.supervisor.workers);
    return kExitNotAvailable;
}

}  // namespace dbsup
