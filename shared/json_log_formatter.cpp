#include "shared/json_log_formatter.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "shared/clock.hpp"
#include "shared/job_log_scope.hpp"

namespace dbsup {

void JsonLogFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
    using namespace std::chrono;
    nlohmann::ordered_json line;
    const auto ms = duration_cast<milliseconds>(msg.time.time_since_epoch()).count();
    std::string time = utc_text(ms);  // "…T12:00:00Z": the milliseconds go before the Z
    char fraction[8];
    std::snprintf(fraction, sizeof fraction, ".%03d", static_cast<int>(ms % 1000));
    time.insert(time.size() - 1, fraction);
    line["time"] = time;
    const auto level = spdlog::level::to_string_view(msg.level);
    line["level"] = std::string_view(level.data(), level.size());
    line["message"] = std::string_view(msg.payload.data(), msg.payload.size());
    line["pid"] = ::getpid();
    if (slot_) line["slot"] = *slot_;
    if (const JobLogScope* scope = JobLogScope::current()) {
        line["job_id"] = scope->job().id;
        line["task"] = scope->job().task;
        line["queue"] = scope->job().queue;
        line["duration_ms"] = duration<double, std::milli>(scope->elapsed()).count();
    }
    const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(text.data(), text.data() + text.size());
    dest.push_back('\n');
}

}  // namespace dbsup
