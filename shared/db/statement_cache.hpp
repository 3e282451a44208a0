// A bounded least-recently-used map from SQL text to a prepared statement, one
// per connection (like pgjdbc's and asyncpg's statement caches). Looking up a
// cached statement allocates nothing: the index keys are views of the texts kept
// in the list's nodes, which never move. The cache only holds handles; its owner
// (the connection) prepares them and finalizes what insert() and take_all()
// hand back. Capacity 0 turns caching off.
//
// Thread-safety: none; a connection belongs to one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace dbsup {

/// What a cache did since its counts were last taken.
struct StatementCacheCounts {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::uint64_t evictions = 0;
};

template <class Handle>
class StatementCache {
public:
    explicit StatementCache(std::size_t capacity) : capacity_(capacity) {}
    StatementCache(const StatementCache&) = delete;
    StatementCache& operator=(const StatementCache&) = delete;

    bool enabled() const noexcept { return capacity_ > 0; }
    std::size_t size() const noexcept { return index_.size(); }

    /// The handle cached for sql, now the most recently used; nullptr on a miss.
    Handle* find(std::string_view sql) {
        auto it = index_.find(sql);
        if (it == index_.end()) {
            ++counts_.misses;
            return nullptr;
        }
        ++counts_.hits;
        entries_.splice(entries_.begin(), entries_, it->second);
        return &it->second->handle;
    }

    /// Caches handle for sql (which must not be cached yet); returns the least
    /// recently used handle when that had to make room.
    std::optional<Handle> insert(std::string_view sql, Handle handle) {
        std::optional<Handle> evicted;
        if (index_.size() >= capacity_ && !entries_.empty()) {
            evicted = take(std::prev(entries_.end()));
            ++counts_.evictions;
        }
        entries_.push_front(Entry{std::string(sql), std::move(handle)});
        index_.emplace(entries_.front().sql, entries_.begin());
        return evicted;
    }

    /// Forgets sql (its statement went stale); returns its handle if it was cached.
    std::optional<Handle> erase(std::string_view sql) {
        auto it = index_.find(sql);
        if (it == index_.end()) return std::nullopt;
        return take(it->second);
    }

    /// Empties the cache, handing every handle back.
    std::vector<Handle> take_all() {
        std::vector<Handle> all;
        for (Entry& e : entries_) all.push_back(std::move(e.handle));
        index_.clear();
        entries_.clear();
        return all;
    }

    /// Turns caching off for good, handing every handle back.
    std::vector<Handle> disable() {
        capacity_ = 0;
        return take_all();
    }

    /// The counts since the last call, which starts them again from zero.
    StatementCacheCounts take_counts() noexcept { return std::exchange(counts_, {}); }

private:
    struct Entry {
        std::string sql;
        Handle handle;
    };
    using Iterator = typename std::list<Entry>::iterator;

    Handle take(Iterator it) {
        Handle handle = std::move(it->handle);
        index_.erase(std::string_view(it->sql));
        entries_.erase(it);
        return handle;
    }

    std::size_t capacity_;
    std::list<Entry> entries_;  // front: most recently used
    std::unordered_map<std::string_view, Iterator> index_;
    StatementCacheCounts counts_;
};

}  // namespace dbsup
