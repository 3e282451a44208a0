// The async pools of one io_context, kept as an Asio service of that context:
// their connections' sockets are registered with its reactor, so they must
// close while the context exists. Asio shuts services down when the context is
// destroyed, and this one drops its pools then (sessions still holding one
// close it as they end, which the shut-down reactor tolerates).
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <boost/asio/execution_context.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "shared/db/async_pool.hpp"

namespace dbsup {

class AsyncPools : public boost::asio::execution_context::service {
public:
    using key_type = AsyncPools;
    static inline boost::asio::execution_context::id id;

    explicit AsyncPools(boost::asio::execution_context& context)
        : boost::asio::execution_context::service(context) {}

    /// The pool for `name` of this generation of the DatabaseManager (older
    /// ones are dropped), made by `build` on first use.
    std::shared_ptr<AsyncPool> find_or_build(const std::string& name, std::uint64_t generation,
                                             const std::function<std::shared_ptr<AsyncPool>()>& build) {
        std::lock_guard lock(mutex_);
        if (generation != generation_) {
            pools_.clear();
            generation_ = generation;
        }
        auto found = pools_.find(name);
        if (found != pools_.end()) return found->second;
        return pools_.emplace(name, build()).first->second;
    }

private:
    void shutdown() override {
        std::lock_guard lock(mutex_);
        pools_.clear();
    }

    std::mutex mutex_;
    std::uint64_t generation_ = 0;
    std::map<std::string, std::shared_ptr<AsyncPool>> pools_;
};

}  // namespace dbsup
