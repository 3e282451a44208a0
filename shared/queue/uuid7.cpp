#include "shared/queue/uuid7.hpp"

#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>

namespace dbsup {
namespace {

thread_local bool seeded = false;

// A forked child must not continue its parent's random sequence. Only the
// forking thread exists in the child, so forgetting its seed is enough; this
// replaces a getpid() per id, which cost a quarter of bulk enqueue's time.
void forget_seed_in_child() { seeded = false; }

// One generator per thread, seeded from the OS.
std::uint64_t random64() {
    thread_local std::mt19937_64 engine;
    if (!seeded) {
        static std::once_flag registered;
        std::call_once(registered, [] { pthread_atfork(nullptr, nullptr, forget_seed_in_child); });
        std::random_device device;
        std::seed_seq seed{device(), device(), device(), device(),
                           static_cast<unsigned>(getpid())};
        engine.seed(seed);
        seeded = true;
    }
    return engine();
}

}  // namespace

std::string new_uuid7() {
    auto ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
    std::uint64_t high = (ms << 16) | 0x7000 | (random64() & 0x0fff);  // version 7
    std::uint64_t low = (random64() & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(36, '-');
    int pos = 0;
    auto put = [&](std::uint64_t word, int nibbles) {
        for (int i = nibbles - 1; i >= 0; --i) {
            if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
            out[static_cast<std::size_t>(pos++)] = kHex[(word >> (i * 4)) & 0xf];
        }
    };
    put(high, 16);
    put(low, 16);
    return out;
}

}  // namespace dbsup
