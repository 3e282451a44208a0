#include "shared/queue/wake_signal.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <filesystem>

#include "config/config.hpp"
#include "shared/clock.hpp"
#include "shared/metrics/shm_segment.hpp"

namespace dbsup {
namespace {

// The word is shared between processes: the futex calls are the non-private ones.
std::uint32_t* word(std::atomic<std::uint32_t>& a) noexcept {
    return reinterpret_cast<std::uint32_t*>(&a);
}

void futex_wait(std::atomic<std::uint32_t>& a, std::uint32_t expected,
                std::chrono::nanoseconds timeout) noexcept {
    timespec ts{static_cast<time_t>(timeout.count() / 1'000'000'000),
                static_cast<long>(timeout.count() % 1'000'000'000)};
    ::syscall(SYS_futex, word(a), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void futex_wake(std::atomic<std::uint32_t>& a, int n) noexcept {
    ::syscall(SYS_futex, word(a), FUTEX_WAKE, n, nullptr, nullptr, 0);
}

std::uint64_t fnv1a(const std::string& text) noexcept {
    std::uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : text) h = (h ^ c) * 1099511628211ULL;
    return h | 1;  // never 0, which means "no key"
}

}  // namespace

WakeSignal::Ticket WakeSignal::ticket() const noexcept {
    return {wake_.sequence.load(std::memory_order_acquire),
            wake_.rouses.load(std::memory_order_acquire)};
}

bool WakeSignal::sleep(Ticket seen, std::chrono::milliseconds timeout,
                       const std::atomic<bool>& stop) noexcept {
    const std::uint64_t until = monotonic_ns() + static_cast<std::uint64_t>(timeout.count()) * 1'000'000;
    wake_.sleepers.fetch_add(1, std::memory_order_acq_rel);
    bool news = false;
    for (;;) {
        const Ticket now = ticket();
        // Every bump that was not a rouse is news.
        if (now.sequence - seen.sequence != now.rouses - seen.rouses) {
            news = true;
            break;
        }
        if (stop.load()) break;
        const std::uint64_t t = monotonic_ns();
        std::uint64_t due = wake_.due_ns.load(std::memory_order_acquire);
        if (due != 0 && due <= t) {
            // A job noted due has come due: one sleeper takes it, the others sleep on.
            if (wake_.due_ns.compare_exchange_strong(due, 0, std::memory_order_acq_rel)) {
                if (wake_.queues.load(std::memory_order_relaxed) > 1) wake(1);  // it may be another's
                news = true;
                break;
            }
            continue;
        }
        if (t >= until) break;
        const std::uint64_t wake_at = due != 0 ? std::min(due, until) : until;
        seen = now;  // only rouses since: sleep on from here
        futex_wait(wake_.sequence, now.sequence, std::chrono::nanoseconds(wake_at - t));
    }
    wake_.sleepers.fetch_sub(1, std::memory_order_acq_rel);
    return news;
}

void WakeSignal::wake(std::uint32_t n) noexcept {
    if (n == 0) return;
    // Sleepers of several queues share the word, and whose job this is is not
    // known here: all of them look (a few empty claims, never a missed job).
    if (wake_.queues.load(std::memory_order_relaxed) > 1) n = UINT32_MAX;
    wake_.sequence.fetch_add(1, std::memory_order_acq_rel);
    if (wake_.sleepers.load(std::memory_order_acquire) > 0)
        futex_wake(wake_.sequence, n > INT_MAX ? INT_MAX : static_cast<int>(n));
}

void WakeSignal::rouse_all() noexcept {
    wake_.rouses.fetch_add(1, std::memory_order_acq_rel);  // first: never taken for news
    wake_.sequence.fetch_add(1, std::memory_order_acq_rel);
    futex_wake(wake_.sequence, INT_MAX);
}

std::uint32_t WakeSignal::sleepers() const noexcept {
    return wake_.sleepers.load(std::memory_order_acquire);
}

void WakeSignal::note_due(std::uint64_t at_ns) noexcept {
    std::uint64_t current = wake_.due_ns.load(std::memory_order_acquire);
    while (current == 0 || at_ns < current) {
        if (wake_.due_ns.compare_exchange_weak(current, at_ns, std::memory_order_acq_rel)) {
            rouse_all();  // sleepers set their alarms again
            return;
        }
    }
}

std::uint64_t WakeSignal::queue_key(const Config& config) {
    auto db = config.databases.find(config.queue.database);
    if (db == config.databases.end() || db->second.url.backend != Backend::sqlite ||
        db->second.url.is_memory())
        return 0;
    std::error_code error;
    std::filesystem::path path = std::filesystem::weakly_canonical(db->second.url.path, error);
    if (error) path = std::filesystem::absolute(db->second.url.path, error);
    return fnv1a(path.string());
}

namespace {

// Every supervisor's segment on this host that can be opened. Best effort:
// another user's segment, or one going away, is skipped (its backstop poll,
// or its workers' next lease renewal, finds what it missed).
template <class F>
void each_local_segment(F&& f) noexcept {
    for (const std::string& name : ShmSegment::list_names()) {
        try {
            ShmSegment segment = ShmSegment::attach(name);
            f(segment.header());
        } catch (const std::exception&) {
        }
    }
}

}  // namespace

void WakeSignal::wake_local(std::uint64_t key, std::uint32_t n, std::int64_t delay_ms) noexcept {
    if (key == 0 || n == 0) return;
    each_local_segment([&](ShmHeader& header) {
        if (header.wake.queue_key.load(std::memory_order_acquire) != key) return;
        WakeSignal signal(header.wake);
        if (delay_ms > 0)
            signal.note_due(monotonic_ns() + static_cast<std::uint64_t>(delay_ms) * 1'000'000);
        else
            signal.wake(n);
    });
}

void WakeSignal::announce_cancel_local() noexcept {
    each_local_segment([](ShmHeader& header) {
        header.cancel_epoch.fetch_add(1, std::memory_order_acq_rel);
    });
}

}  // namespace dbsup
