#include "config/duration.hpp"

#include <stdexcept>

namespace dbsup {

std::int64_t parse_duration_ms(const std::string& text) {
    std::size_t used = 0;
    double number = 0;
    try {
        number = std::stod(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    const std::string unit = text.substr(used);
    const double scale = unit == "ms"                  ? 1
                         : unit == "s" || unit.empty() ? 1000
                         : unit == "m"                 ? 60'000
                         : unit == "h"                 ? 3'600'000
                         : unit == "d"                 ? 86'400'000
                                                       : -1;
    // The upper bound keeps the product inside int64 (and NaN/inf out).
    if (used == 0 || scale < 0 || !(number >= 0) || number * scale > 1e15)
        throw std::invalid_argument("'" + text +
                                    "' is not a duration (e.g. 500ms, 10s, 5m, 2h, 1d)");
    return static_cast<std::int64_t>(number * scale);
}

}  // namespace dbsup
