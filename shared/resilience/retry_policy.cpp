#include "shared/resilience/retry_policy.hpp"

#include <algorithm>

namespace dbsup {

std::chrono::milliseconds RetryPolicy::delay(std::int64_t attempt,
                                             std::mt19937_64& random) const {
    const std::int64_t shift = std::min<std::int64_t>(attempt - 1, 30);
    const std::int64_t cap = std::min(config_.max_ms, config_.base_ms << shift);
    std::uniform_int_distribution<std::int64_t> pick(0, std::max<std::int64_t>(cap, 0));
    return std::chrono::milliseconds(pick(random));
}

}  // namespace dbsup
