// One line of live progress on a terminal (done, rate, workers alive, queue
// waiting), rewritten in place at every stats write. Silent when stderr is not
// a terminal, so logs and CI output stay clean.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace dbsup {

class ProgressLine {
public:
    ProgressLine();
    /// The line for a stats document (also systemd's STATUS=), rewritten in
    /// place on a terminal.
    std::string update(const nlohmann::json& stats);
    /// Ends the line so the next output starts on its own.
    void finish();

private:
    bool enabled_;
    bool shown_ = false;
    std::uint64_t last_done_ = 0;
    std::chrono::steady_clock::time_point last_at_ = std::chrono::steady_clock::now();
};

}  // namespace dbsup
