// A unit of work on one database, SQLAlchemy-style: the first statement checks a
// connection out of the pool and begins a transaction ("autobegin"); commit() or
// rollback() ends it and gives the connection back, so a long-lived (e.g.
// thread-local) Session holds a connection only while a transaction is open.
// The destructor is noexcept and rolls back whatever was not committed; a
// connection that broke is discarded by the pool, never reused.
//
// Thread-safety: a Session belongs to one thread.
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "shared/db/connection_lease.hpp"
#include "shared/db/connection_pool.hpp"
#include "shared/db/result.hpp"
#include "shared/monitoring/query_observer.hpp"

namespace dbsup {

class Session {
public:
    /// holder names this session in the pool's leak reports; observer, when
    /// given, is told of every statement and transaction (it must outlive this).
    Session(std::shared_ptr<ConnectionPool> pool, std::string holder,
            QueryObserver* observer = nullptr);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    /// Runs one statement ($1..$n bound from params) in the current transaction,
    /// beginning one if none is open; tracked under `label`. @throws Error
    Result execute(const QueryLabel& label, std::string_view sql, const Params& params = {});
    /// The same, labelled by the statement's kind ("select:-:sql", ...).
    Result execute(std::string_view sql, const Params& params = {});
    /// Runs statements whose rows nobody reads, in order, in the current
    /// transaction (begun if none is open): on PostgreSQL in one round trip per
    /// 256. Each is counted under its own label, with an equal share of the
    /// time. The first error is thrown, and the transaction is then unusable.
    /// @throws Error
    void execute_all(const std::vector<PendingStatement>& statements);
    /// Bulk operations in the current transaction (begun if none is open); each
    /// returns how many rows it touched and is tracked as "<operation>:<table>:bulk".
    /// Table and column names are validated and quoted (Error(usage) otherwise);
    /// values are always bound. Large inputs go in chunks (see BulkStatements).
    /// @throws Error
    std::uint64_t bulk_insert(std::string_view table, const std::vector<std::string>& columns,
                              const std::vector<Params>& rows);
    /// Each row: the key's value, then one value per column.
    std::uint64_t bulk_update(std::string_view table, std::string_view key_column,
                              const std::vector<std::string>& columns,
                              const std::vector<Params>& rows);
    std::uint64_t bulk_delete(std::string_view table, std::string_view key_column,
                              const std::vector<Value>& keys);

    /// Runs a parameterless multi-statement script in the current transaction.
    void execute_script(std::string_view sql);

    /// Begins a transaction explicitly. With a deadline (a job's timeout, say)
    /// the deadlines compose, the smallest remaining winning: the checkout waits
    /// no longer than pool_timeout or the deadline, and the transaction's
    /// statements are cancelled at the deadline or after statement_timeout_ms.
    /// @throws Error(usage) if one is open, Error(timeout) if the deadline passed.
    void begin(Connection::BeginMode mode = Connection::BeginMode::deferred,
               std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);
    /// Commits and gives the connection back; nothing to commit is not an error.
    /// @throws Error when COMMIT fails (the work is rolled back).
    void commit();
    /// Rolls back and gives the connection back. Never throws.
    void rollback() noexcept;
    bool in_transaction() const noexcept { return static_cast<bool>(lease_); }
    /// From another thread: stops the statement this session's transaction is
    /// running (Connection::cancel); nothing outside a transaction.
    void cancel() noexcept;
    /// Runs `f` once the open transaction commits (dropped if it rolls back;
    /// at once when none is open). For what must not happen before the data
    /// is visible, such as waking a worker to claim it. `f` must not throw.
    void after_commit(std::function<void()> f);

    /// Runs f(*this) in a new transaction: commits when f returns normally (a
    /// failed commit throws), rolls back and rethrows when f throws.
    template <class F>
    decltype(auto) transact(F&& f);

    /// The connection of the open transaction (beginning one if needed).
    Connection& connection();
    ConnectionPool& pool() const noexcept { return *pool_; }
    /// The pool's backend; opens nothing.
    Backend backend() const noexcept;

private:
    std::shared_ptr<ConnectionPool> pool_;
    void end_transaction(bool committed) noexcept;
    ConnectionLease take_lease() noexcept;
    /// f() timed under label and its outcome told to the breaker.
    template <class F>
    decltype(auto) tracked(const QueryLabel& label, std::string_view sql, F&& f);
    void count_bulk(BulkOperation operation, std::uint64_t rows) noexcept;
    /// What is left until deadline, capped by statement_timeout. @throws Error(timeout)
    std::chrono::milliseconds time_left(std::chrono::steady_clock::time_point deadline) const;
    /// SQLite's bulk path: sql once per item (one cached statement stepped per
    /// row), the whole run tracked as one query; returns the rows touched.
    template <class Items, class ParamsOf>
    std::uint64_t step_each(const QueryLabel& label, const std::string& sql, const Items& items,
                            ParamsOf params_of);

    std::string holder_;
    QueryObserver* observer_;
    ConnectionLease lease_;
    std::mutex lease_mutex_;  // lease_ changes vs cancel() from another thread
    std::chrono::steady_clock::time_point began_at_;
    std::vector<std::function<void()>> after_commit_;
};

template <class F>
decltype(auto) Session::transact(F&& f) {
    begin();
    try {
        if constexpr (std::is_void_v<std::invoke_result_t<F, Session&>>) {
            std::forward<F>(f)(*this);
            commit();
        } else {
            auto result = std::forward<F>(f)(*this);
            commit();
            return result;
        }
    } catch (...) {
        rollback();
        throw;
    }
}

}  // namespace dbsup
