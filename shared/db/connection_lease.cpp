#include "shared/db/connection_lease.hpp"

#include "shared/db/connection_pool.hpp"

namespace dbsup {

ConnectionLease::ConnectionLease(ConnectionPool* pool,
                                 std::unique_ptr<Connection> connection) noexcept
    : pool_(pool), connection_(std::move(connection)) {}

ConnectionLease& ConnectionLease::operator=(ConnectionLease&& other) noexcept {
    if (this != &other) {
        release();
        pool_ = other.pool_;
        connection_ = std::move(other.connection_);
    }
    return *this;
}

ConnectionLease::~ConnectionLease() { release(); }

void ConnectionLease::release() noexcept {
    if (connection_) pool_->give_back(std::move(connection_));
}

}  // namespace dbsup
