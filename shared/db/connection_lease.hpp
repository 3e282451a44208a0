// A connection checked out of a ConnectionPool. Move-only; its destructor gives
// the connection back (rolled back if a transaction was left open), or closes it
// if it is broken. The pool must outlive every lease it handed out.
#pragma once

#include <memory>

#include "shared/db/connection.hpp"

namespace dbsup {

class ConnectionPool;

class ConnectionLease {
public:
    ConnectionLease() = default;
    ConnectionLease(ConnectionPool* pool, std::unique_ptr<Connection> connection) noexcept;
    ConnectionLease(ConnectionLease&& other) noexcept = default;
    ConnectionLease& operator=(ConnectionLease&& other) noexcept;
    ~ConnectionLease();

    Connection& operator*() const noexcept { return *connection_; }
    Connection* operator->() const noexcept { return connection_.get(); }
    Connection* get() const noexcept { return connection_.get(); }
    explicit operator bool() const noexcept { return connection_ != nullptr; }

    /// Returns the connection to its pool now.
    void release() noexcept;

private:
    ConnectionPool* pool_ = nullptr;
    std::unique_ptr<Connection> connection_;
};

}  // namespace dbsup
