#include "shared/queue/uuid7.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <random>

namespace dbsup {
namespace {

// One generator per thread, re-seeded in a forked child so two processes never
// share a random sequence.
std::uint64_t random64() {
    thread_local pid_t seeded_in = 0;
    thread_local std::mt19937_64 engine;
    if (seeded_in != getpid()) {
        std::random_device device;
        std::seed_seq seed{device(), device(), device(), device(),
                           static_cast<unsigned>(getpid())};
        engine.seed(seed);
        seeded_in = getpid();
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
