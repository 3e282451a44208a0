// The layout of the shared-memory segment (DESIGN section 6): a header written
// by the supervisor before any worker exists, then one fixed slot per worker.
// Every field a worker writes is a lock-free std::atomic<uint64_t>; only the
// slot's own worker writes it, only the supervisor reads it, and the
// supervisor bounds-checks what it reads. No mutex lives in the segment.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <type_traits>

#include "shared/metrics/histogram.hpp"
#include "shared/metrics/label_table.hpp"
#include "shared/metrics/runner_activity.hpp"

namespace dbsup {

/// Counters of one worker; each is a monotonically increasing total.
enum class Counter : std::uint32_t {
    jobs_claimed,
    claims_empty,  // claims that found nothing to do (what idleness costs the database)
    jobs_succeeded,
    jobs_retried,
    jobs_dead,
    jobs_released,
    jobs_rescued,
    query_errors,
    slow_queries,
    transactions_committed,
    transactions_rolled_back,
    transactions_retried,  // tries again after a transient error (RetryPolicy)
    bulk_rows_inserted,
    bulk_rows_updated,
    bulk_rows_deleted,
    jobs_snoozed,  // back to waiting without spending an attempt (SnoozeJob)
    kCount
};

/// Histograms of one worker, durations in nanoseconds.
/// `query` holds only queries whose label found the queries table full: each
/// query is recorded once, in its label's row or here (the hot path pays one
/// histogram); totals are the sum of both.
enum class Timer : std::uint32_t { job_run, job_wait, query, transaction, kCount };

/// The columns of a pool row: gauges first, then totals (kFirstTotal on).
enum class PoolColumn : std::size_t {
    size, in_use, idle, overflow,
    checkouts, timeouts, opened, closed, recycled, preping_failures,
    statement_cache_hits, statement_cache_misses, statement_cache_evictions, kCount
};
constexpr std::size_t kFirstPoolTotal = static_cast<std::size_t>(PoolColumn::checkouts);
static_assert(static_cast<std::size_t>(PoolColumn::kCount) <= ShmLabelRow::kCounters);

/// The columns of a circuit breaker row: the state (a gauge), then totals.
enum class BreakerColumn : std::size_t { state, opened, rejected, kCount };

enum class WorkerState : std::uint64_t { empty, starting, ready, draining, stopped };

struct ShmWorkerSlot {
    std::atomic<std::uint64_t> pid;
    std::atomic<std::uint64_t> generation;
    std::atomic<std::uint64_t> state;         // WorkerState
    std::atomic<std::uint64_t> heartbeat_ns;  // CLOCK_MONOTONIC
    std::atomic<std::uint64_t> started_ns;
    std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(Counter::kCount)> counters;
    std::array<ShmHistogram, static_cast<std::size_t>(Timer::kCount)> timers;
    ShmLabelTable tasks;    // per task: counters[0..2] succeeded, retried, dead
    ShmLabelTable queries;  // per "operation:table:service": seconds (count = total), errors, slow
    ShmLabelTable pools;    // per database: PoolColumn figures, seconds = checkout waits
    ShmLabelTable errors;   // per error class ("postgresql:23"): counters[0] = queries failed
    ShmLabelTable breakers; // per database: BreakerColumn figures
    static constexpr std::size_t kMaxRunners = 256;  // worker.threads' upper bound
    std::array<ShmRunnerActivity, kMaxRunners> runners;  // one per job-runner thread

    void add(Counter c, std::uint64_t n = 1) noexcept {
        counters[static_cast<std::size_t>(c)].fetch_add(n, std::memory_order_relaxed);
    }
    std::uint64_t get(Counter c) const noexcept {
        return counters[static_cast<std::size_t>(c)].load(std::memory_order_relaxed);
    }
    ShmHistogram& timer(Timer t) noexcept { return timers[static_cast<std::size_t>(t)]; }
    const ShmHistogram& timer(Timer t) const noexcept {
        return timers[static_cast<std::size_t>(t)];
    }
};

/// How idle job threads sleep and are woken (DESIGN section 7, see WakeSignal).
/// The one part of the segment every process writes: workers, the
/// supervisor's waker, and enqueuers on this host (SQLite's local wake).
struct ShmWake {
    std::atomic<std::uint32_t> sequence;  // the futex word: bumped by every wake
    std::atomic<std::uint32_t> rouses;    // bumps that carried no news (a stop)
    std::atomic<std::uint32_t> sleepers;  // job threads asleep on `sequence`
    std::atomic<std::uint32_t> queues;    // the workers' queues; > 1: every wake wakes all
    std::atomic<std::uint64_t> due_ns;    // CLOCK_MONOTONIC of a future run_at (0: none)
    std::atomic<std::uint64_t> queue_key; // which SQLite queue database the workers take jobs from
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free &&
              sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

struct ShmHeader {
    static constexpr std::uint64_t kMagic = 0x7075736264627364ULL;  // "dsbdbsup"
    static constexpr std::uint64_t kLayoutVersion = 9;
    static constexpr std::size_t kMaxWorkers = 256;
    static constexpr std::size_t kMaxConfigBytes = 64 * 1024;

    std::atomic<std::uint64_t> magic;
    std::atomic<std::uint64_t> layout_version;
    std::atomic<std::uint64_t> header_size;
    std::atomic<std::uint64_t> slot_size;
    std::atomic<std::uint64_t> slot_count;
    std::atomic<std::uint64_t> supervisor_pid;
    ShmWake wake;
    // Bumped when an operator cancels a running job (`jobs cancel`, or the
    // supervisor hearing Queue::kCancelChannel): each worker then asks the
    // database which of its running jobs to stop.
    std::atomic<std::uint64_t> cancel_epoch;
    // The resolved configuration in two buffers: a reload writes the one not in
    // use, then publishes it with a release store of config_index, so a worker
    // starting meanwhile reads a whole configuration, old or new.
    std::atomic<std::uint64_t> config_index;
    std::array<std::atomic<std::uint64_t>, 2> config_size;
    std::array<std::array<char, kMaxConfigBytes>, 2> config;
};

static_assert(std::is_standard_layout_v<ShmWorkerSlot>);
static_assert(std::is_trivially_destructible_v<ShmWorkerSlot>);
static_assert(std::is_standard_layout_v<ShmHeader>);
static_assert(std::is_trivially_destructible_v<ShmHeader>);
static_assert(alignof(ShmWorkerSlot) == alignof(std::atomic<std::uint64_t>));

}  // namespace dbsup
