// Bucket maths on nanoseconds with bit operations only (no division on the hot
// path): bucket 0 is below 2^10 ns (~1 µs); above it, each power of two of
// nanoseconds is split into four equal sub-buckets.
#include "shared/metrics/histogram.hpp"

#include <bit>

namespace dbsup {
namespace {

constexpr int kFirstBit = 10;  // 2^10 ns = 1.024 µs

}  // namespace

int ShmHistogram::bucket_of(std::uint64_t ns) noexcept {
    int bit = std::bit_width(ns) - 1;  // floor(log2(ns)), -1 for 0
    if (bit < kFirstBit) return 0;
    int octave = bit - kFirstBit;
    if (octave >= kOctaves) return kBuckets - 1;
    int sub = static_cast<int>((ns >> (bit - 2)) & 3);  // the two bits below the leading one
    return 1 + octave * kSubBuckets + sub;
}

std::uint64_t ShmHistogram::upper_bound_ns(int index) noexcept {
    if (index <= 0) return (std::uint64_t{1} << kFirstBit) - 1;
    int octave = (index - 1) / kSubBuckets;
    auto sub = static_cast<std::uint64_t>((index - 1) % kSubBuckets);
    // Bucket covers [2^bit * (4 + sub) / 4, 2^bit * (5 + sub) / 4).
    return (std::uint64_t{1} << (octave + kFirstBit - 2)) * (5 + sub) - 1;
}

HistogramSnapshot ShmHistogram::snapshot() const noexcept {
    HistogramSnapshot s;
    for (std::size_t i = 0; i < buckets.size(); ++i) {
        s.buckets[i] = buckets[i].load(std::memory_order_relaxed);
        s.count += s.buckets[i];  // the count that matches the buckets read
    }
    s.sum_ns = sum_ns.load(std::memory_order_relaxed);
    return s;
}

void ShmHistogram::assign(const HistogramSnapshot& from) noexcept {
    for (std::size_t i = 0; i < buckets.size(); ++i)
        buckets[i].store(from.buckets[i], std::memory_order_relaxed);
    sum_ns.store(from.sum_ns, std::memory_order_relaxed);
    count.store(from.count, std::memory_order_relaxed);
}

void HistogramSnapshot::add(const HistogramSnapshot& other) noexcept {
    count += other.count;
    sum_ns += other.sum_ns;
    for (std::size_t i = 0; i < buckets.size(); ++i) buckets[i] += other.buckets[i];
}

double HistogramSnapshot::quantile_seconds(double q) const noexcept {
    if (count == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count) + 0.999999);
    if (rank == 0) rank = 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets.size(); ++i) {
        seen += buckets[i];
        if (seen >= rank) return static_cast<double>(ShmHistogram::upper_bound_ns(static_cast<int>(i)) + 1) / 1e9;
    }
    return static_cast<double>(ShmHistogram::upper_bound_ns(ShmHistogram::kBuckets - 1) + 1) / 1e9;
}

}  // namespace dbsup
