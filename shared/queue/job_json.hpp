// A job as operators see it, in one shape for every reader: `jobs list/show
// --json` and the dashboard's API. A cancelled job (stored dead) shows as
// "cancelled"; times are UTC text, "-" when unset.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "shared/queue/job.hpp"

namespace dbsup {

/// "cancelled" for a job an operator cancelled, else its stored state.
std::string shown_state(const Job& job);
/// "2026-11-22T12:00:00Z", or "-" for 0.
std::string job_time_text(std::int64_t epoch_ms);
nlohmann::json job_json(const Job& job);

}  // namespace dbsup
