// Runs a coroutine to its end on an event loop of the caller's (restarted if
// it ran before, so its async pools live on between calls) and rethrows what
// it threw: the async tests' and benchmarks' way into coroutines.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <exception>
#include <utility>

namespace dbsup::test {

/// f: a callable returning Awaitable<void>.
template <class F>
void run_coroutine(boost::asio::io_context& loop, F f) {
    std::exception_ptr failure;
    boost::asio::co_spawn(loop, std::move(f), [&](std::exception_ptr e) { failure = e; });
    loop.restart();
    loop.run();
    if (failure) std::rethrow_exception(failure);
}

}  // namespace dbsup::test
