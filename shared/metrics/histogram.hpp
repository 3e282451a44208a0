// A fixed log-scale latency histogram living in shared memory: 4 buckets per
// power of two of nanoseconds from 1.024 µs to about 137 s (below: bucket 0;
// above: the last bucket), plus count and sum. Many threads of one worker record into it with
// relaxed fetch_add (one writer process); the supervisor reads a snapshot and
// derives percentiles. Standard-layout, trivially destructible, atomics only.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace dbsup {

struct HistogramSnapshot;

struct ShmHistogram {
    static constexpr int kSubBuckets = 4;                       // per power of two
    static constexpr int kOctaves = 27;                         // 1.024 µs * 2^27 ≈ 137 s
    static constexpr int kBuckets = kOctaves * kSubBuckets + 1;  // + bucket 0: below 1 µs

    std::atomic<std::uint64_t> count;
    std::atomic<std::uint64_t> sum_ns;
    std::array<std::atomic<std::uint64_t>, kBuckets> buckets;

    /// Records one duration. Lock-free; a few relaxed atomic adds.
    void record(std::uint64_t nanoseconds) noexcept {
        buckets[static_cast<std::size_t>(bucket_of(nanoseconds))].fetch_add(
            1, std::memory_order_relaxed);
        sum_ns.fetch_add(nanoseconds, std::memory_order_relaxed);
        count.fetch_add(1, std::memory_order_relaxed);
    }
    HistogramSnapshot snapshot() const noexcept;
    /// Overwrites this histogram with a copy (its one writer publishing figures
    /// kept elsewhere, e.g. a pool's wait times).
    void assign(const HistogramSnapshot& from) noexcept;

    /// The bucket a duration falls in.
    static int bucket_of(std::uint64_t nanoseconds) noexcept;
    /// The largest duration (ns) that bucket `index` holds.
    static std::uint64_t upper_bound_ns(int index) noexcept;
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

/// A plain copy of a histogram, to aggregate and to read percentiles from.
struct HistogramSnapshot {
    std::uint64_t count = 0;
    std::uint64_t sum_ns = 0;
    std::array<std::uint64_t, ShmHistogram::kBuckets> buckets{};

    void add(const HistogramSnapshot& other) noexcept;
    /// The q-quantile (0 < q <= 1) in seconds: the upper bound of the bucket that
    /// holds it, so at most 19% (one sub-bucket) above the true value; 0 when empty.
    double quantile_seconds(double q) const noexcept;
};

}  // namespace dbsup
