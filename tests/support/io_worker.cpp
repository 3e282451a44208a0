// dbsupervisor built as a library with two I/O-bound C++ tasks, for the async
// runner's end-to-end tests and benchmark: each waits payload.ms, then
// inserts payload.n into io_items (a table the caller creates).
//   io_insert       a coroutine ([worker] mode = "async"): the wait is a timer
//   io_insert_sync  the same as a sync handler: the wait holds its job thread
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <thread>

#include "supervisor/cli.hpp"

namespace {

const dbsup::QueryLabel kInsert{"insert", "io_items", "io_worker"};
constexpr const char* kInsertSql = "INSERT INTO io_items (n) VALUES ($1)";

std::chrono::milliseconds wait_of(const nlohmann::json& payload) {
    return std::chrono::milliseconds(payload.value("ms", std::int64_t{50}));
}

dbsup::Awaitable<void> io_insert(const dbsup::Job&, const nlohmann::json& payload,
                                 dbsup::AsyncSession& db) {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, wait_of(payload));
    co_await timer.async_wait(boost::asio::use_awaitable);
    co_await db.execute(kInsert, kInsertSql, dbsup::params_of(payload.value("n", std::int64_t{0})));
}

void io_insert_sync(const dbsup::Job&, const nlohmann::json& payload, dbsup::Session& db) {
    std::this_thread::sleep_for(wait_of(payload));
    db.execute(kInsert, kInsertSql, {payload.value("n", std::int64_t{0})});
}

}  // namespace

int main(int argc, char** argv) {
    return dbsup::Cli::run(argc, argv, [](dbsup::TaskRegistry& tasks) {
        tasks.add_async("io_insert", io_insert);
        tasks.add("io_insert_sync", io_insert_sync);
    });
}
