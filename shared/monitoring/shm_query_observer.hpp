// The worker's QueryObserver: counts and times every tracked query and
// transaction in the worker's shared-memory slot (totals, a histogram, a row per
// "operation:table:service" label, a row per error class) and logs one warning
// line per query slower than monitoring.slow_query_ms: labels, duration and the
// statement's text, which holds placeholders, never parameter values.
#pragma once

#include <chrono>
#include <mutex>

#include "shared/metrics/shm_layout.hpp"
#include "shared/monitoring/query_observer.hpp"

namespace dbsup {

class ShmQueryObserver final : public QueryObserver {
public:
    ShmQueryObserver(ShmWorkerSlot& slot, std::chrono::milliseconds slow_query);

    void on_query(const QueryLabel& label, std::string_view sql, std::uint64_t ns,
                  const Error* error) noexcept override;
    void on_transaction(std::uint64_t ns, bool committed) noexcept override;
    void on_bulk_rows(BulkOperation operation, std::uint64_t rows) noexcept override;

    /// The counter columns of a row of the slot's queries table (the row's
    /// histogram count is its total).
    static constexpr std::size_t kErrors = 1, kSlow = 2;
    /// Every query of a slot: its labels' rows plus the unlabelled overflow.
    static HistogramSnapshot all_queries(const ShmWorkerSlot& slot);

private:
    ShmLabelRow* row_for(const QueryLabel& label) noexcept;
    void log_slow(const QueryLabel& label, std::string_view sql, std::uint64_t ns) noexcept;

    ShmWorkerSlot& slot_;
    std::uint64_t slow_ns_;
    std::mutex append_mutex_;  // process-local, for the slot's label tables
};

}  // namespace dbsup
