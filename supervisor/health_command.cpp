#include "supervisor/health_command.hpp"

#include <cstdio>
#include <iostream>

#include "shared/monitoring/database_health.hpp"
#include "supervisor/cli.hpp"

namespace dbsup {
namespace {

std::string figure(const std::optional<std::int64_t>& v) {
    return v ? std::to_string(*v) : "-";
}

void print_line(const HealthReport& r) {
    const char* status = r.ok ? "ok" : (r.optional ? "degraded" : "UNHEALTHY");
    char latency[32];
    std::snprintf(latency, sizeof latency, "%.1f ms", r.latency_seconds * 1000);
    std::cout << r.name << "  " << status << "  " << latency << "  " << r.url;
    if (r.ok)
        std::cout << "  " << r.version << "  connections " << figure(r.connections)
                  << ", active queries " << figure(r.active_queries);
    else
        std::cout << "  error: " << r.error;
    std::cout << "\n";
}

}  // namespace

int HealthCommand::run(const Config& config, bool json) {
    std::vector<HealthReport> reports = DatabaseHealth::check_all(config, "dbsupervisor/health");
    bool healthy = true;
    nlohmann::json doc = nlohmann::json::object();
    for (const HealthReport& r : reports) {
        healthy = healthy && (r.ok || r.optional);
        if (json)
            doc[r.name] = r.to_json();
        else
            print_line(r);
    }
    if (json) std::cout << doc.dump(2) << "\n";
    return healthy ? kExitOk : kExitFailure;
}

}  // namespace dbsup
