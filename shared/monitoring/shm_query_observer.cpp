#include "shared/monitoring/shm_query_observer.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <string>

#include "shared/monitoring/error_class.hpp"

namespace dbsup {
namespace {

// A label's row is looked up once per thread, not once per query: the shared
// table's lookup compares up to 64 names, the cache a handful of short strings.
struct CachedRow {
    const ShmWorkerSlot* slot = nullptr;
    std::string text;
    ShmLabelRow* row = nullptr;
};
constexpr std::size_t kCachedRows = 16;

constexpr std::size_t kStatementExcerpt = 300;

}  // namespace

ShmQueryObserver::ShmQueryObserver(ShmWorkerSlot& slot, std::chrono::milliseconds slow_query)
    : slot_(slot),
      slow_ns_(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(slow_query).count())) {}

ShmLabelRow* ShmQueryObserver::row_for(const QueryLabel& label) noexcept {
    thread_local std::array<CachedRow, kCachedRows> cache;
    thread_local std::size_t next = 0;
    for (const CachedRow& c : cache)
        if (c.slot == &slot_ && c.text == label.text) return c.row;
    ShmLabelRow* row = slot_.queries.find_or_add(label.text, append_mutex_);
    if (!row) return nullptr;  // the table is full; the totals still count
    try {
        cache[next] = CachedRow{&slot_, label.text, row};
        next = (next + 1) % kCachedRows;
    } catch (...) {  // out of memory for the cache: only the cache is lost
    }
    return row;
}

void ShmQueryObserver::on_query(const QueryLabel& label, std::string_view sql, std::uint64_t ns,
                                const Error* error) noexcept {
    ShmLabelRow* row = row_for(label);
    (row ? row->seconds : slot_.timer(Timer::query)).record(ns);  // the only cost of a good query
    if (error) {
        slot_.add(Counter::query_errors);
        if (row) row->counters[kErrors].fetch_add(1, std::memory_order_relaxed);
        try {
            if (ShmLabelRow* e = slot_.errors.find_or_add(error_class(*error), append_mutex_))
                e->counters[0].fetch_add(1, std::memory_order_relaxed);
        } catch (...) {  // no memory for the class name: the totals above still count
        }
    }
    if (ns >= slow_ns_) {
        slot_.add(Counter::slow_queries);
        if (row) row->counters[kSlow].fetch_add(1, std::memory_order_relaxed);
        log_slow(label, sql, ns);
    }
}

HistogramSnapshot ShmQueryObserver::all_queries(const ShmWorkerSlot& slot) {
    HistogramSnapshot all = slot.timer(Timer::query).snapshot();
    for (std::size_t r = 0; r < slot.queries.published(); ++r)
        all.add(slot.queries.rows[r].seconds.snapshot());
    return all;
}

void ShmQueryObserver::on_transaction(std::uint64_t ns, bool committed) noexcept {
    slot_.add(committed ? Counter::transactions_committed : Counter::transactions_rolled_back);
    slot_.timer(Timer::transaction).record(ns);
}

void ShmQueryObserver::log_slow(const QueryLabel& label, std::string_view sql,
                                std::uint64_t ns) noexcept {
    try {
        std::string excerpt(sql.substr(0, kStatementExcerpt));
        for (char& c : excerpt)
            if (c == '\n' || c == '\t') c = ' ';
        spdlog::warn("slow query {} took {:.1f} ms (slow_query_ms {}): {}{}", label.text,
                     static_cast<double>(ns) / 1e6, slow_ns_ / 1'000'000, excerpt,
                     sql.size() > kStatementExcerpt ? " ..." : "");
    } catch (...) {  // logging must not fail the query
    }
}

void ShmQueryObserver::on_bulk_rows(BulkOperation operation, std::uint64_t rows) noexcept {
    static constexpr Counter kCounters[] = {Counter::bulk_rows_inserted, Counter::bulk_rows_updated,
                                            Counter::bulk_rows_deleted};
    slot_.add(kCounters[static_cast<std::size_t>(operation)], rows);
}

}  // namespace dbsup
