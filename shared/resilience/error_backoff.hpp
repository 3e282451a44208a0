// How long to wait before trying again after the database failed a call the
// loop cannot do without (a claim): short at first, doubling up to a cap, and
// short again after a success, so an outage is not hammered and a blip costs
// little.
#pragma once

#include <algorithm>
#include <chrono>

namespace dbsup {

class ErrorBackoff {
public:
    static constexpr std::chrono::milliseconds kFirst{100};
    static constexpr std::chrono::milliseconds kMax{5000};

    /// The pause before the next try; each call doubles the one after.
    std::chrono::milliseconds next() noexcept {
        const auto now = pause_;
        pause_ = std::min(pause_ * 2, kMax);
        return now;
    }
    void reset() noexcept { pause_ = kFirst; }

private:
    std::chrono::milliseconds pause_ = kFirst;
};

}  // namespace dbsup
