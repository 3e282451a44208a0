#include "shared/db/session.hpp"

#include "shared/errors.hpp"

namespace dbsup {

Session::Session(std::shared_ptr<ConnectionPool> pool, std::string holder)
    : pool_(std::move(pool)), holder_(std::move(holder)) {}

Session::~Session() { rollback(); }

void Session::begin(Connection::BeginMode mode) {
    if (lease_)
        throw Error(ErrorCode::usage, "a transaction is already open in this session",
                    pool_->options().name);
    ConnectionLease lease = pool_->acquire(holder_);
    lease->begin(mode);  // on failure the lease goes back (and is discarded if broken)
    lease_ = std::move(lease);
}

Connection& Session::connection() {
    if (!lease_) begin();
    return *lease_;
}

Result Session::execute(std::string_view sql, const Params& params) {
    return connection().execute(sql, params);
}

void Session::execute_script(std::string_view sql) { connection().execute_script(sql); }

void Session::commit() {
    if (!lease_) return;
    ConnectionLease lease = std::move(lease_);
    lease->commit();  // if it throws, the lease's destructor rolls back or discards
}

void Session::rollback() noexcept {
    // Giving the lease back rolls back an open transaction, or discards a
    // connection on which even ROLLBACK failed.
    lease_.release();
}

Backend Session::backend() const noexcept { return pool_->options().backend; }

}  // namespace dbsup
