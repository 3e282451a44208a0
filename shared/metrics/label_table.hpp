// A bounded table of dynamic labels (task names; "operation:table:service") in
// one worker's shared-memory slot, each with its own counters and histogram.
// Writers are the threads of that worker: a new label is appended under a
// process-local mutex (never one in the segment: a dead owner would poison it)
// and published by a release store of the count. Readers (the supervisor) load
// the count with acquire and read only the rows below it.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "shared/metrics/histogram.hpp"

namespace dbsup {

struct ShmLabelRow {
    static constexpr std::size_t kNameWords = 8;  // 64 bytes of name, NUL-padded
    std::array<std::atomic<std::uint64_t>, kNameWords> name;
    static constexpr std::size_t kCounters = 13;
    std::array<std::atomic<std::uint64_t>, kCounters> counters;  // meaning chosen by the table's user
    ShmHistogram seconds;

    std::string read_name() const;
};

struct ShmLabelTable {
    static constexpr std::size_t kRows = 64;
    std::atomic<std::uint64_t> count;
    std::atomic<std::uint64_t> dropped;  // labels that found the table full
    std::array<ShmLabelRow, kRows> rows;

    /// The row for `label`, appending it if new; nullptr when the table is full.
    /// `append_mutex` is the writer process's own, shared by all its threads.
    ShmLabelRow* find_or_add(std::string_view label, std::mutex& append_mutex) noexcept;
    /// How many rows a reader may look at (bounds-checked against kRows).
    std::size_t published() const noexcept;
};

}  // namespace dbsup
