// Leak detection shared by the sync and async pools: a checked-out connection
// held longer than leak_detection is reported once, naming its holder.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "shared/db/connection.hpp"

namespace dbsup {

struct LeakReport {
    std::uint64_t id;
    long long held_ms;
    std::string holder;

    /// The connections of `in_use` (pointers to anything with a pool_state)
    /// held past `limit` and not reported yet; marks them reported. Call under
    /// the pool's lock.
    template <class Connections>
    static std::vector<LeakReport> collect(const Connections& in_use,
                                           std::chrono::milliseconds limit) {
        std::vector<LeakReport> found;
        const auto now = Connection::Clock::now();
        for (auto* c : in_use) {
            const auto held = now - c->pool_state.checked_out_at;
            if (c->pool_state.leak_reported || held < limit) continue;
            c->pool_state.leak_reported = true;
            found.push_back({c->pool_state.id,
                             std::chrono::duration_cast<std::chrono::milliseconds>(held).count(),
                             c->pool_state.holder});
        }
        return found;
    }
    /// Logs each, outside the pool's lock.
    static void log(const std::string& pool, std::chrono::milliseconds limit,
                    const std::vector<LeakReport>& leaks);
    /// collect() under `lock`, counted into `leaks_total`, then log(); returns how many.
    template <class Connections>
    static std::size_t check(std::mutex& lock, const Connections& in_use,
                             std::uint64_t& leaks_total, const std::string& pool,
                             std::chrono::milliseconds limit) {
        std::vector<LeakReport> found;
        {
            std::lock_guard guard(lock);
            found = collect(in_use, limit);
            leaks_total += found.size();
        }
        log(pool, limit, found);
        return found.size();
    }
};

}  // namespace dbsup
