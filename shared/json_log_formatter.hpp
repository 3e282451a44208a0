// --log-format json: one JSON object per line, for log shippers (Loki, Vector,
// journald's structured readers): time (UTC, ms), level, message, pid, slot (in
// a worker), and job_id, task, queue and duration_ms on lines written while a
// job runs (see JobLogScope). Messages are escaped as JSON, invalid UTF-8
// replaced, so a payload's bytes cannot break a line.
#pragma once

#include <spdlog/formatter.h>

#include <memory>
#include <optional>

namespace dbsup {

class JsonLogFormatter final : public spdlog::formatter {
public:
    explicit JsonLogFormatter(std::optional<std::size_t> slot) : slot_(slot) {}
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<JsonLogFormatter>(slot_);
    }

private:
    std::optional<std::size_t> slot_;
};

}  // namespace dbsup
