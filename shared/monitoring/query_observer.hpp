// Where tracked queries and transactions are reported. The database layer only
// knows this interface; a worker plugs in ShmQueryObserver, which writes into
// its shared-memory slot. Implementations must be thread-safe and must not throw.
#pragma once

#include <cstdint>
#include <string_view>

#include "shared/errors.hpp"
#include "shared/monitoring/query_label.hpp"

namespace dbsup {

enum class BulkOperation { insert, update, remove };

class QueryObserver {
public:
    virtual ~QueryObserver() = default;
    /// One statement ran for `ns`; `error` is null when it succeeded. `sql` holds
    /// placeholders only: parameter values never reach an observer.
    virtual void on_query(const QueryLabel& label, std::string_view sql, std::uint64_t ns,
                          const Error* error) noexcept = 0;
    /// One transaction ended after `ns`, committed or rolled back.
    virtual void on_transaction(std::uint64_t ns, bool committed) noexcept = 0;
    /// A bulk operation touched `rows` rows (its time is reported by on_query).
    virtual void on_bulk_rows(BulkOperation operation, std::uint64_t rows) noexcept = 0;
};

}  // namespace dbsup
