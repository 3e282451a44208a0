// One open database connection, of either backend. Not thread-safe: a
// connection belongs to one thread at a time, handed over by ConnectionPool.
// Backend errors are translated to dbsup::Error at this boundary; once an error
// poisons the connection, broken() stays true and the pool discards it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/database_url.hpp"
#include "shared/db/result.hpp"
#include "shared/db/statement_cache.hpp"

namespace dbsup {

struct QueryLabel;

/// A statement whose rows nobody reads (a task's INSERT, say), for
/// execute_all(). label names it in the metrics; sql and label must outlive the call.
struct PendingStatement {
    const QueryLabel* label;
    std::string_view sql;
    Params params;
};

class Connection {
public:
    using Clock = std::chrono::steady_clock;

    /// What the pool keeps about the connection; touched only under the pool's lock.
    struct PoolState {
        std::uint64_t id = 0;
        Clock::time_point created_at{};
        Clock::time_point expires_at = Clock::time_point::max();
        Clock::time_point last_used{};
        Clock::time_point checked_out_at{};
        char holder[48] = {};
        bool leak_reported = false;
    };

    virtual ~Connection() = default;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    /// Runs one statement with $1..$n bound from params. @throws Error
    virtual Result execute(std::string_view sql, const Params& params) = 0;
    /// Runs several statements without parameters (schema scripts). @throws Error
    virtual void execute_script(std::string_view sql) = 0;
    /// A cheap round trip; false (and broken() true) when the connection is dead.
    virtual bool ping() noexcept = 0;
    /// Stops the statement running now, from any thread (the owner's one fails
    /// with an error; the connection stays usable). Nothing when none runs.
    virtual void cancel() noexcept = 0;
    virtual bool broken() const noexcept = 0;
    virtual bool in_transaction() const noexcept = 0;
    virtual std::string server_version() = 0;
    virtual Backend backend() const noexcept = 0;
    /// The statement cache's hits, misses and evictions since the last call.
    virtual StatementCacheCounts take_statement_counts() noexcept = 0;
    /// Inserts rows into a table through the backend's fastest path (PostgreSQL
    /// COPY, SQLite one cached INSERT stepped per row) in the open transaction.
    /// table and columns arrive validated and quoted. @throws Error
    virtual void insert_rows(const std::string& table, const std::vector<std::string>& columns,
                             const std::vector<Params>& rows) = 0;
    /// Runs the statements in order in the open transaction, discarding their
    /// rows, and throws the first error. This one executes them one by one;
    /// PostgreSQL overrides it to send them all in one round trip. @throws Error
    virtual void execute_all(const std::vector<PendingStatement>& statements);

    /// immediate: take the write lock at BEGIN (SQLite BEGIN IMMEDIATE), so a
    /// read-then-write transaction cannot fail to upgrade; PostgreSQL ignores it.
    enum class BeginMode { deferred, immediate };

    /// @throws Error
    void begin(BeginMode mode = BeginMode::deferred);
    /// Cancels any statement of the open transaction still running after `limit`
    /// (PostgreSQL SET LOCAL statement_timeout, SQLite a progress-handler
    /// deadline); the statement fails with ErrorCode::timeout. @throws Error
    virtual void limit_transaction_time(std::chrono::milliseconds limit) = 0;
    void commit();
    void rollback();
    /// Rolls back an open transaction; false when that failed (the connection is unusable).
    bool reset() noexcept;

    PoolState pool_state;

protected:
    Connection() = default;
    virtual void begin_statement(BeginMode mode) = 0;
};

}  // namespace dbsup
