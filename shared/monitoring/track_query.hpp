// track_query(): the C++ form of the original track_query_performance
// decorator. It times f(), reports the duration and the outcome (with the
// error's class when f throws an Error) to the observer, and passes f's result
// or exception through unchanged. A null observer costs one branch.
#pragma once

#include <chrono>
#include <string_view>
#include <utility>

#include "shared/monitoring/query_observer.hpp"

namespace dbsup {

inline std::uint64_t elapsed_ns(std::chrono::steady_clock::time_point since) noexcept {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                             since)
            .count());
}

template <class F>
decltype(auto) track_query(QueryObserver* observer, const QueryLabel& label,
                           std::string_view sql, F&& f) {
    if (!observer) return std::forward<F>(f)();
    const auto started = std::chrono::steady_clock::now();
    try {
        decltype(auto) result = std::forward<F>(f)();
        observer->on_query(label, sql, elapsed_ns(started), nullptr);
        return result;
    } catch (const Error& e) {
        observer->on_query(label, sql, elapsed_ns(started), &e);
        throw;
    } catch (...) {
        const Error unknown(ErrorCode::sql, "not a database error");
        observer->on_query(label, sql, elapsed_ns(started), &unknown);
        throw;
    }
}

}  // namespace dbsup
