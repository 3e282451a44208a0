// Start-up verification: opens one connection to every configured database,
// runs a round trip and reads the server version. A failure of a database
// marked `optional` is reported as degraded; any other failure is fatal to the
// caller (the supervisor refuses to start).
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace dbsup {

struct DatabaseStatus {
    std::string name;
    std::string url;  // redacted
    bool ok = false;
    bool optional = false;
    double latency_seconds = 0;
    std::string version;
    std::string error;

    bool degraded() const noexcept { return !ok && optional; }
    bool fatal() const noexcept { return !ok && !optional; }
};

class DatabaseVerifier {
public:
    /// One status per database, in name order. Never throws for a database error.
    static std::vector<DatabaseStatus> verify(const Config& config,
                                              const std::string& application_name);
    static bool all_usable(const std::vector<DatabaseStatus>& statuses);
};

}  // namespace dbsup
