#include "shared/db/session.hpp"

#include <algorithm>
#include <map>

#include "shared/db/bulk_statements.hpp"
#include "shared/errors.hpp"
#include "shared/monitoring/track_query.hpp"

namespace dbsup {
std::chrono::milliseconds Session::time_left(std::chrono::steady_clock::time_point deadline) const {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline -
                                                             std::chrono::steady_clock::now());
    if (left.count() <= 0)
        throw Error(ErrorCode::timeout, "the deadline passed before the transaction began",
                    pool_->options().name);
    const auto statement = pool_->options().statement_timeout;
    return statement.count() > 0 ? std::min(left, statement) : left;
}

Session::Session(std::shared_ptr<ConnectionPool> pool, std::string holder,
                 QueryObserver* observer)
    : pool_(std::move(pool)), holder_(std::move(holder)), observer_(observer) {}

Session::~Session() { rollback(); }

void Session::begin(Connection::BeginMode mode,
                    std::optional<std::chrono::steady_clock::time_point> deadline) {
    if (lease_)
        throw Error(ErrorCode::usage, "a transaction is already open in this session",
                    pool_->options().name);
    ConnectionLease lease = pool_->acquire(holder_, deadline);
    lease->begin(mode);  // on failure the lease goes back (and is discarded if broken)
    if (deadline) lease->limit_transaction_time(time_left(*deadline));
    std::lock_guard lock(lease_mutex_);
    lease_ = std::move(lease);
    if (observer_) began_at_ = std::chrono::steady_clock::now();
}

Connection& Session::connection() {
    if (!lease_) begin();
    return *lease_;
}

Result Session::execute(std::string_view sql, const Params& params) {
    return execute(QueryLabel::of_statement(sql), sql, params);
}

template <class F>
decltype(auto) Session::tracked(const QueryLabel& label, std::string_view sql, F&& f) {
    try {
        decltype(auto) r = track_query(observer_, label, sql, std::forward<F>(f));
        pool_->breaker().record_success();
        return r;
    } catch (const Error& e) {
        pool_->breaker().record(e);
        throw;
    }
}

Result Session::execute(const QueryLabel& label, std::string_view sql, const Params& params) {
    Connection& c = connection();  // a checkout is not part of the query's time
    return tracked(label, sql, [&] { return c.execute(sql, params); });
}

void Session::execute_all(const std::vector<PendingStatement>& statements) {
    if (statements.empty()) return;
    Connection& c = connection();
    const auto started = std::chrono::steady_clock::now();
    try {
        c.execute_all(statements);
        pool_->breaker().record_success();
    } catch (const Error& e) {
        pool_->breaker().record(e);
        if (observer_)
            observer_->on_query(*statements.front().label, statements.front().sql,
                                elapsed_ns(started), &e);
        throw;
    }
    if (!observer_) return;
    const std::uint64_t share = elapsed_ns(started) / statements.size();
    for (const PendingStatement& st : statements) observer_->on_query(*st.label, st.sql, share, nullptr);
}

template <class Items, class ParamsOf>
std::uint64_t Session::step_each(const QueryLabel& label, const std::string& sql,
                                 const Items& items, ParamsOf params_of) {
    Connection& c = connection();
    return tracked(label, sql, [&] {
        std::uint64_t touched = 0;
        for (const auto& item : items)
            touched += static_cast<std::uint64_t>(c.execute(sql, params_of(item)).affected_rows);
        return touched;
    });
}

void Session::count_bulk(BulkOperation operation, std::uint64_t rows) noexcept {
    if (observer_) observer_->on_bulk_rows(operation, rows);
}

std::uint64_t Session::bulk_insert(std::string_view table, const std::vector<std::string>& columns,
                                   const std::vector<Params>& rows) {
    BulkStatements bulk("bulk_insert", table, "", columns);
    bulk.check_widths(rows, columns.size());
    if (rows.empty()) return 0;
    Connection& c = connection();
    tracked(bulk.label(), "COPY / INSERT " + bulk.table(), [&] {
        c.insert_rows(bulk.table(), bulk.columns(), rows);
        return 0;
    });
    count_bulk(BulkOperation::insert, rows.size());
    return rows.size();
}

std::uint64_t Session::bulk_update(std::string_view table, std::string_view key_column,
                                   const std::vector<std::string>& columns,
                                   const std::vector<Params>& rows) {
    BulkStatements bulk("bulk_update", table, key_column, columns);
    bulk.check_widths(rows, columns.size() + 1);
    if (rows.empty()) return 0;
    const QueryLabel& label = bulk.label();
    std::uint64_t changed = 0;
    if (backend() == Backend::sqlite) {
        changed = step_each(label, bulk.sqlite_update(), rows, [](const Params& row) { return row; });
    } else {
        std::map<std::string, std::string> types;
        for (const Row& r : execute(BulkStatements::column_types_query(), {bulk.table()}).rows)
            types[r.get<std::string>(0)] = r.get<std::string>(1);
        const std::string full = bulk.postgres_update(BulkStatements::kUpdateRows, types);
        for (std::size_t start = 0; start < rows.size(); start += BulkStatements::kUpdateRows) {
            std::size_t end = std::min(rows.size(), start + BulkStatements::kUpdateRows);
            Params params;
            for (std::size_t r = start; r < end; ++r)
                params.insert(params.end(), rows[r].begin(), rows[r].end());
            const bool whole = end - start == BulkStatements::kUpdateRows;
            changed += static_cast<std::uint64_t>(
                execute(label, whole ? full : bulk.postgres_update(end - start, types), params)
                    .affected_rows);
        }
    }
    count_bulk(BulkOperation::update, changed);
    return changed;
}

std::uint64_t Session::bulk_delete(std::string_view table, std::string_view key_column,
                                   const std::vector<Value>& keys) {
    BulkStatements bulk("bulk_delete", table, key_column, {});
    if (keys.empty()) return 0;
    const QueryLabel& label = bulk.label();
    std::uint64_t deleted = 0;
    if (backend() == Backend::sqlite) {
        deleted = step_each(label, bulk.sqlite_delete(), keys,
                            [](const Value& key) { return Params{key}; });
    } else {
        const std::string sql = bulk.postgres_delete();
        for (std::size_t start = 0; start < keys.size(); start += BulkStatements::kDeleteKeys) {
            std::size_t end = std::min(keys.size(), start + BulkStatements::kDeleteKeys);
            Params array{BulkStatements::array_literal(keys, start, end)};
            deleted += static_cast<std::uint64_t>(execute(label, sql, array).affected_rows);
        }
    }
    count_bulk(BulkOperation::remove, deleted);
    return deleted;
}

void Session::execute_script(std::string_view sql) { connection().execute_script(sql); }

void Session::commit() {
    if (!lease_) return;
    ConnectionLease lease = take_lease();
    try {
        lease->commit();  // if it throws, the lease's destructor rolls back or discards
    } catch (...) {
        end_transaction(false);
        throw;
    }
    end_transaction(true);
}

void Session::rollback() noexcept {
    if (!lease_) return;
    // Giving the lease back rolls back an open transaction, or discards a
    // connection on which even ROLLBACK failed.
    take_lease().release();
    end_transaction(false);
}

ConnectionLease Session::take_lease() noexcept {
    std::lock_guard lock(lease_mutex_);
    return std::move(lease_);
}

void Session::cancel() noexcept {
    std::lock_guard lock(lease_mutex_);  // the owner cannot give the connection back meanwhile
    if (lease_) lease_->cancel();
}

void Session::end_transaction(bool committed) noexcept {
    if (observer_) observer_->on_transaction(elapsed_ns(began_at_), committed);
    std::vector<std::function<void()>> hooks = std::move(after_commit_);
    after_commit_.clear();
    if (committed)
        for (auto& f : hooks) f();
}

void Session::after_commit(std::function<void()> f) {
    if (!lease_) return f();
    after_commit_.push_back(std::move(f));
}

Backend Session::backend() const noexcept { return pool_->options().backend; }

}  // namespace dbsup
