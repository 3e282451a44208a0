#include "shared/metrics/label_table.hpp"

#include <cstring>

#include "shared/utf8.hpp"

namespace dbsup {
namespace {

constexpr std::size_t kNameBytes = ShmLabelRow::kNameWords * 8;

// The label as the eight words it is stored as (cut to at most 63 bytes, at a
// character boundary: half a character would make the name invalid UTF-8).
std::array<std::uint64_t, ShmLabelRow::kNameWords> pack(std::string_view label) {
    char bytes[kNameBytes] = {};
    std::memcpy(bytes, label.data(), utf8::cut(label, kNameBytes - 1));
    std::array<std::uint64_t, ShmLabelRow::kNameWords> words{};
    std::memcpy(words.data(), bytes, kNameBytes);
    return words;
}

bool same(const ShmLabelRow& row, const std::array<std::uint64_t, ShmLabelRow::kNameWords>& w) {
    for (std::size_t i = 0; i < w.size(); ++i)
        if (row.name[i].load(std::memory_order_relaxed) != w[i]) return false;
    return true;
}

}  // namespace

std::string ShmLabelRow::read_name() const {
    char bytes[kNameBytes + 1] = {};
    for (std::size_t i = 0; i < kNameWords; ++i) {
        std::uint64_t word = name[i].load(std::memory_order_relaxed);
        std::memcpy(bytes + i * 8, &word, 8);
    }
    return std::string(bytes);
}

std::size_t ShmLabelTable::published() const noexcept {
    return std::min<std::size_t>(count.load(std::memory_order_acquire), kRows);
}

ShmLabelRow* ShmLabelTable::find_or_add(std::string_view label, std::mutex& append_mutex) noexcept {
    auto words = pack(label);
    std::size_t n = published();
    for (std::size_t i = 0; i < n; ++i)
        if (same(rows[i], words)) return &rows[i];
    std::lock_guard lock(append_mutex);
    n = published();  // another thread may have added it meanwhile
    for (std::size_t i = 0; i < n; ++i)
        if (same(rows[i], words)) return &rows[i];
    if (n == kRows) {
        dropped.fetch_add(1, std::memory_order_relaxed);
        return nullptr;
    }
    for (std::size_t i = 0; i < words.size(); ++i)
        rows[n].name[i].store(words[i], std::memory_order_relaxed);
    count.store(n + 1, std::memory_order_release);  // publishes the name written above
    return &rows[n];
}

}  // namespace dbsup
