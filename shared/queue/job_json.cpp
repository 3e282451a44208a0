#include "shared/queue/job_json.hpp"

#include "shared/clock.hpp"

namespace dbsup {

std::string shown_state(const Job& job) {
    return job.cancelled && job.state == "dead" ? "cancelled" : job.state;
}

std::string job_time_text(std::int64_t epoch_ms) { return epoch_ms == 0 ? "-" : utc_text(epoch_ms); }

nlohmann::json job_json(const Job& j) {
    return {{"id", j.id},
            {"queue", j.queue},
            {"task", j.task},
            {"payload", nlohmann::json::parse(j.payload, nullptr, false)},
            {"state", shown_state(j)},
            {"priority", j.priority},
            {"attempts", j.attempts},
            {"max_attempts", j.max_attempts},
            {"run_at", job_time_text(j.run_at_ms)},
            {"locked_by", j.locked_by},
            {"last_error", j.last_error},
            {"created_at", job_time_text(j.created_at_ms)},
            {"finished_at", job_time_text(j.finished_at_ms)}};
}

}  // namespace dbsup
