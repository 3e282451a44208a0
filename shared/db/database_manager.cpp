#include "shared/db/database_manager.hpp"

#include <boost/asio/this_coro.hpp>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/thread_pool.hpp>


#include "config/password_resolver.hpp"
#include "shared/db/async_pools.hpp"
#include "shared/db/engine.hpp"
#include "shared/errors.hpp"

namespace dbsup {
namespace {

// The calling thread's sessions. Sessions left from another pid (this thread
// forked) or an older manager generation are dropped on the next lookup.
struct ThreadSessions {
    pid_t pid = 0;
    std::uint64_t generation = 0;
    std::vector<std::pair<std::string, std::unique_ptr<Session>>> sessions;

    void forget_inherited() noexcept {
        // They hold the parent's connections: destroying them would roll back
        // (and on PostgreSQL terminate) the parent's sessions.
        for (auto& entry : sessions) (void)entry.second.release();
        sessions.clear();
    }
    ~ThreadSessions() {
        if (pid != getpid()) forget_inherited();
    }
};

ThreadSessions& thread_sessions() {
    thread_local ThreadSessions sessions;
    return sessions;
}

std::string holder_label(std::string_view name) {
    return std::string(name) + "@thread-" + std::to_string(syscall(SYS_gettid));
}

}  // namespace

std::atomic<DatabaseManager*> DatabaseManager::instance_{nullptr};
std::mutex DatabaseManager::instance_mutex_;
std::atomic<std::uint64_t> DatabaseManager::instances_built_{0};

DatabaseManager::DatabaseManager() : owner_pid_(getpid()) {
    instances_built_.fetch_add(1, std::memory_order_relaxed);
}

DatabaseManager& DatabaseManager::instance() {
    DatabaseManager* manager = instance_.load(std::memory_order_acquire);
    if (!manager) {
        std::lock_guard lock(instance_mutex_);
        manager = instance_.load(std::memory_order_relaxed);
        if (!manager) {
            manager = new DatabaseManager();  // never deleted: see the header
            instance_.store(manager, std::memory_order_release);
        }
    }
    return *manager;
}

std::uint64_t DatabaseManager::instances_built() noexcept {
    return instances_built_.load(std::memory_order_relaxed);
}

void DatabaseManager::init_worker(const std::map<std::string, DatabaseConfig>& databases,
                                  std::string application_name, QueryObserver* observer,
                                  const CircuitBreakerConfig& breaker,
                                  std::size_t statement_cache_size) {
    check_fork();
    for (const auto& [name, db] : databases) (void)PasswordResolver::resolve(db);
    std::map<std::string, std::shared_ptr<ConnectionPool>, std::less<>> old;
    {
        std::lock_guard lock(mutex_);
        databases_ = {databases.begin(), databases.end()};
        application_name_ = std::move(application_name);
        observer_.store(observer, std::memory_order_release);
        breaker_ = breaker;
        statement_cache_size_ = statement_cache_size;
        old.swap(pools_);
        async_pools_.clear();
        generation_.fetch_add(1, std::memory_order_acq_rel);
    }
}

void DatabaseManager::close_worker() noexcept {
    check_fork();
    std::map<std::string, std::shared_ptr<ConnectionPool>, std::less<>> old;
    {
        std::lock_guard lock(mutex_);
        old.swap(pools_);
        async_pools_.clear();
        observer_.store(nullptr, std::memory_order_release);
        generation_.fetch_add(1, std::memory_order_acq_rel);
    }
    thread_sessions().sessions.clear();
}

void DatabaseManager::check_fork() {
    if (owner_pid_.load(std::memory_order_acquire) == getpid()) return;
    // Only the forking thread exists in the child, so no other thread can hold
    // mutex_ here... unless one held it at the moment of fork: then it stays
    // locked forever in the child. Rebuild it rather than risk that.
    new (&mutex_) std::mutex();
    for (auto& [name, pool] : pools_) {
        pool->abandon();
        new std::shared_ptr<ConnectionPool>(pool);  // leaked on purpose: never destroyed
    }
    pools_.clear();
    async_pools_.clear();
    owner_pid_.store(getpid(), std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
}

Session& DatabaseManager::session(std::string_view name) {
    check_fork();
    ThreadSessions& mine = thread_sessions();
    pid_t pid = owner_pid_.load(std::memory_order_acquire);
    if (mine.pid != pid) {
        mine.forget_inherited();
        mine.pid = pid;
    }
    std::uint64_t current = generation();
    if (mine.generation != current) {
        mine.sessions.clear();
        mine.generation = current;
    }
    for (auto& [session_name, session] : mine.sessions)
        if (session_name == name) return *session;
    auto session = std::make_unique<Session>(pool(name), holder_label(name),
                                             observer_.load(std::memory_order_acquire));
    mine.sessions.emplace_back(std::string(name), std::move(session));
    return *mine.sessions.back().second;
}

std::shared_ptr<ConnectionPool> DatabaseManager::pool(std::string_view name) {
    check_fork();
    std::lock_guard lock(mutex_);
    auto found = pools_.find(name);
    if (found != pools_.end()) return found->second;
    std::shared_ptr<ConnectionPool> built = build_pool(std::string(name));
    pools_.emplace(std::string(name), built);
    return built;
}

std::unique_ptr<Session> DatabaseManager::dedicated_session(std::string_view name,
                                                            const std::string& holder,
                                                            std::int64_t statement_timeout_ms) {
    check_fork();
    std::shared_ptr<ConnectionPool> own;
    {
        std::lock_guard lock(mutex_);
        own = build_pool(std::string(name), 1, statement_timeout_ms);
    }
    return std::make_unique<Session>(std::move(own), holder,
                                     observer_.load(std::memory_order_acquire));
}

std::shared_ptr<ConnectionPool> DatabaseManager::build_pool(const std::string& name,
                                                            std::size_t size,
                                                            std::int64_t statement_timeout_ms) {
    auto db = databases_.find(name);
    if (db == databases_.end())
        throw Error(ErrorCode::usage, "no database named '" + name + "' is configured");
    DatabaseConfig config = db->second;
    if (statement_timeout_ms > 0 &&
        (config.statement_timeout_ms <= 0 || statement_timeout_ms < config.statement_timeout_ms))
        config.statement_timeout_ms = statement_timeout_ms;
    auto engine = std::make_shared<Engine>(config, PasswordResolver::resolve(config),
                                           application_name_);
    PoolOptions options = PoolOptions::from_config(config, breaker_);
    if (size > 0) {
        options.size = size;
        options.max_overflow = 0;
    }
    return std::make_shared<ConnectionPool>(
        std::move(options),
        [engine, cache = statement_cache_size_] { return engine->connect(cache); });
}

std::shared_ptr<AsyncPool> DatabaseManager::build_async_pool(const std::string& name) {
    std::shared_ptr<ConnectionPool> sync = pool(name);  // its breaker; opens nothing
    std::lock_guard lock(mutex_);
    const DatabaseConfig& config = databases_.find(name)->second;
    auto engine = std::make_shared<Engine>(config, PasswordResolver::resolve(config),
                                           application_name_);
    PoolOptions options = PoolOptions::from_config(config, breaker_);
    // SQLite: a thread per connection the pool may open, since a statement
    // waiting for the write lock blocks its thread, and the COMMIT that would
    // free the lock must not wait for a thread behind it.
    std::shared_ptr<boost::asio::thread_pool> threads;
    if (config.url.backend == Backend::sqlite)
        threads = std::make_shared<boost::asio::thread_pool>(options.size + options.max_overflow);
    auto built = std::make_shared<AsyncPool>(
        std::move(options), std::move(sync),
        [engine, threads, cache = statement_cache_size_] {
            return engine->connect_async(cache, threads);
        });
    std::erase_if(async_pools_, [](const auto& weak) { return weak.expired(); });
    async_pools_.push_back(built);
    return built;
}

std::shared_ptr<AsyncPool> DatabaseManager::async_pool(const std::string& name,
                                                       const boost::asio::any_io_executor& executor) {
    check_fork();
    auto& pools = boost::asio::use_service<AsyncPools>(
        boost::asio::query(executor, boost::asio::execution::context));
    return pools.find_or_build(name, generation(), [&] { return build_async_pool(name); });
}

Awaitable<AsyncSession> DatabaseManager::async_session(std::string name) {
    auto executor = co_await boost::asio::this_coro::executor;
    co_return AsyncSession(async_pool(name, executor), holder_label(name) + "/async",
                           observer_.load(std::memory_order_acquire));
}

std::vector<PoolStats> DatabaseManager::pool_stats() const {
    std::vector<std::shared_ptr<AsyncPool>> async;
    std::vector<PoolStats> stats;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [name, pool] : pools_) stats.push_back(pool->stats());
        for (const auto& weak : async_pools_)
            if (auto pool = weak.lock()) async.push_back(std::move(pool));
    }
    for (const auto& pool : async) {  // outside the lock: a leak report logs
        pool->check_leaks();
        stats.push_back(pool->stats());
    }
    return stats;
}

}  // namespace dbsup
