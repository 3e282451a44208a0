// The queues a worker's job threads take jobs from, resolved: the [queues.*]
// when given, else one queue, [queue] name, with every thread.
#pragma once

#include <vector>

#include "config/config.hpp"

namespace dbsup {

inline std::vector<QueueShareConfig> queue_shares(const Config& config) {
    std::vector<QueueShareConfig> shares;
    for (const auto& [name, share] : config.queues) shares.push_back(share);
    if (shares.empty()) shares.push_back({config.queue.name, config.worker.threads, 0});
    for (QueueShareConfig& share : shares)
        if (share.claim_batch == 0) share.claim_batch = config.queue.claim_batch;
    return shares;
}

}  // namespace dbsup
