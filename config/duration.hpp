// Durations as operators write them: "500ms", "30s", "10m", "2h", "1d" (a bare
// number is seconds). One parser for the CLI (--delay, --unique-for) and the
// config (schedules' every).
#pragma once

#include <cstdint>
#include <string>

namespace dbsup {

/// @throws std::invalid_argument naming the text and the accepted forms.
std::int64_t parse_duration_ms(const std::string& text);

}  // namespace dbsup
