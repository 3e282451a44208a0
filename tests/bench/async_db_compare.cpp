// Async sessions against sync ones on the bench's PostgreSQL (`scripts/bench
// async`), each figure the median of REPS runs, the two sides alternated:
//   SELECT 1      one statement at a time on one connection, in one
//                 transaction: the round trip (target: async within 10%);
//   SELECT $1     10,000 independent statements from one thread: sync one at
//                 a time, async 64 coroutines sharing one session, whose
//                 statements are pipelined (target: >= 5x the sync rate).
//   async_db_compare [REPS]
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "shared/db/database_manager.hpp"
#include "tests/support/run_coroutine.hpp"
#include "tests/support/test_databases.hpp"

namespace {

using namespace dbsup;
using Clock = std::chrono::steady_clock;
constexpr int kRoundTrips = 20000;
constexpr int kIndependent = 10000;
constexpr int kInFlight = 64;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

void run(boost::asio::io_context& loop, std::function<Awaitable<void>()> f) {
    dbsup::test::run_coroutine(loop, std::move(f));
}

double sync_select_1() {
    Session& s = DatabaseManager::instance().session("main");
    const auto t0 = Clock::now();
    for (int i = 0; i < kRoundTrips; ++i) s.execute("SELECT 1");
    s.commit();
    return seconds_since(t0) / kRoundTrips;
}

double async_select_1(boost::asio::io_context& loop) {
    double per = 0;
    run(loop, [&]() -> Awaitable<void> {
        AsyncSession s = co_await DatabaseManager::instance().async_session("main");
        const auto t0 = Clock::now();
        for (int i = 0; i < kRoundTrips; ++i) co_await s.execute("SELECT 1");
        co_await s.commit();
        per = seconds_since(t0) / kRoundTrips;
    });
    return per;
}

double sync_independent() {
    Session& s = DatabaseManager::instance().session("main");
    const auto t0 = Clock::now();
    for (int i = 0; i < kIndependent; ++i) s.execute("SELECT $1::int", {i});
    s.commit();
    return kIndependent / seconds_since(t0);
}

double async_independent(boost::asio::io_context& loop) {
    double rate = 0;
    run(loop, [&]() -> Awaitable<void> {
        AsyncSession s = co_await DatabaseManager::instance().async_session("main");
        co_await s.execute("SELECT 1");  // the connection is checked out before the clock starts
        const auto t0 = Clock::now();
        int running = kInFlight;
        boost::asio::steady_timer all_done(loop, Clock::time_point::max());
        for (int c = 0; c < kInFlight; ++c)
            boost::asio::co_spawn(
                loop,
                [&, c]() -> Awaitable<void> {
                    for (int i = c; i < kIndependent; i += kInFlight)
                        co_await s.execute("SELECT $1::int", params_of(i));
                    if (--running == 0) all_done.cancel();
                },
                boost::asio::detached);
        boost::system::error_code ec;
        co_await all_done.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
        rate = kIndependent / seconds_since(t0);
        co_await s.commit();
    });
    return rate;
}

}  // namespace

int main(int argc, char** argv) {
    const int reps = argc > 1 ? std::atoi(argv[1]) : 5;
    test::TestDatabases databases;
    DatabaseConfig db = databases.config(test::TestBackend::postgresql);
    DatabaseManager::instance().init_worker({{"main", db}}, "async-bench");
    boost::asio::io_context loop;
    std::vector<double> sync1, async1, sync_rate, async_rate;
    (void)sync_select_1();  // warm: connections open, statements prepared
    (void)async_select_1(loop);
    for (int r = 0; r < reps; ++r) {
        sync1.push_back(sync_select_1());
        async1.push_back(async_select_1(loop));
        sync_rate.push_back(sync_independent());
        async_rate.push_back(async_independent(loop));
    }
    const double s1 = median(sync1) * 1e6, a1 = median(async1) * 1e6;
    std::printf("SELECT 1 round trip, one connection (median of %d x %d): sync %.1f us, async %.1f us: "
                "async/sync %.3f (target <= 1.10)\n",
                reps, kRoundTrips, s1, a1, a1 / s1);
    const double sr = median(sync_rate), ar = median(async_rate);
    std::printf("%d independent SELECT $1 from one thread (median of %d): sync one at a time "
                "%.0f/s, async %d in flight %.0f/s: %.1fx (target >= 5x)\n",
                kIndependent, reps, sr, kInFlight, ar, ar / sr);
    DatabaseManager::instance().close_worker();
}
