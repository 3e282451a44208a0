// An AsyncConnection checked out of an AsyncPool. Move-only; its destructor
// gives the connection back, or closes it when it is broken or still inside a
// transaction (a destructor cannot await a ROLLBACK; closing rolls back on the
// server). The pool must outlive every lease it handed out.
#pragma once

#include <memory>

#include "shared/db/async_connection.hpp"

namespace dbsup {

class AsyncPool;

class AsyncLease {
public:
    AsyncLease() = default;
    AsyncLease(AsyncPool* pool, std::unique_ptr<AsyncConnection> connection) noexcept
        : pool_(pool), connection_(std::move(connection)) {}
    AsyncLease(AsyncLease&& other) noexcept = default;
    AsyncLease& operator=(AsyncLease&& other) noexcept {
        if (this != &other) {
            release();
            pool_ = other.pool_;
            connection_ = std::move(other.connection_);
        }
        return *this;
    }
    ~AsyncLease() { release(); }

    AsyncConnection& operator*() const noexcept { return *connection_; }
    AsyncConnection* operator->() const noexcept { return connection_.get(); }
    explicit operator bool() const noexcept { return connection_ != nullptr; }

    /// Returns the connection to its pool now.
    void release() noexcept;

private:
    AsyncPool* pool_ = nullptr;
    std::unique_ptr<AsyncConnection> connection_;
};

}  // namespace dbsup
