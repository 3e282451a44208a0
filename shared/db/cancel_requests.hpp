// Cancel requests of one io_context's PostgreSQL connections, sent off the
// event loop: PQcancel opens a connection of its own and blocks until the
// server (or PgBouncer) has taken the request. Kept as an Asio service of the
// context so that they are waited for when it is destroyed: a process that
// exits in the middle of one leaves the server, or PgBouncer, with a cancel
// client gone before its answer (PgBouncer 1.18 aborts on that).
//
// Thread-safety: send() may be called from any thread.
#pragma once

#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <mutex>

namespace dbsup {

class CancelRequests : public boost::asio::execution_context::service {
public:
    using key_type = CancelRequests;
    static inline boost::asio::execution_context::id id;

    explicit CancelRequests(boost::asio::execution_context& context)
        : boost::asio::execution_context::service(context) {}

    /// Runs `request` (which blocks) on a thread of the service's own; once
    /// the context is shutting down, on the calling thread.
    void send(std::function<void()> request) {
        {
            std::lock_guard lock(mutex_);
            if (!stopped_) {
                boost::asio::post(threads_, std::move(request));
                return;
            }
        }
        request();
    }

private:
    void shutdown() override {
        {
            std::lock_guard lock(mutex_);
            stopped_ = true;
        }
        threads_.join();  // every request sent has been answered
    }

    std::mutex mutex_;
    bool stopped_ = false;
    boost::asio::thread_pool threads_{2};
};

}  // namespace dbsup
