// Shared-memory metrics: what a worker pays per counter increment and per
// histogram record (1 and 4 threads on one slot), and what the supervisor pays
// to aggregate 256 slots into the stats document.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <memory>

#include "shared/metrics/shm_segment.hpp"
#include "shared/monitoring/shm_query_observer.hpp"
#include "shared/monitoring/track_query.hpp"
#include "supervisor/stats_writer.hpp"

namespace {

using namespace dbsup;

ShmWorkerSlot& shared_slot() {
    static auto* slot = new ShmWorkerSlot();  // value-initialised: all zero
    return *slot;
}

void BM_CounterIncrement(benchmark::State& state) {
    ShmWorkerSlot& slot = shared_slot();
    for (auto _ : state) slot.add(Counter::jobs_claimed);
    benchmark::DoNotOptimize(slot.get(Counter::jobs_claimed));
}
BENCHMARK(BM_CounterIncrement)->Threads(1)->Threads(4);

void BM_HistogramRecord(benchmark::State& state) {
    ShmWorkerSlot& slot = shared_slot();
    std::uint64_t ns = 1000 + static_cast<std::uint64_t>(state.thread_index()) * 7919;
    for (auto _ : state) {
        slot.timer(Timer::query).record(ns);
        ns = ns * 3 % 100'000'000 + 1000;  // spread over the buckets
    }
}
BENCHMARK(BM_HistogramRecord)->Threads(1)->Threads(4);

// What track_query() adds to one query: two clock reads, the totals, the
// histogram and the label's row (the query itself is an empty callable).
// Compare with BM_UntrackedCall for the cost of the call alone.
void BM_TrackedQueryOverhead(benchmark::State& state) {
    static auto* slot = new ShmWorkerSlot();
    static auto* observer = new ShmQueryObserver(*slot, std::chrono::milliseconds(200));
    static const QueryLabel label{"claim", "dbsup_jobs", "queue"};
    int n = 0;
    for (auto _ : state)
        benchmark::DoNotOptimize(track_query(observer, label, "SELECT 1", [&] { return ++n; }));
}
BENCHMARK(BM_TrackedQueryOverhead)->Threads(1)->Threads(4);

void BM_UntrackedCall(benchmark::State& state) {
    static const QueryLabel label{"claim", "dbsup_jobs", "queue"};
    int n = 0;
    for (auto _ : state)
        benchmark::DoNotOptimize(track_query(nullptr, label, "SELECT 1", [&] { return ++n; }));
}
BENCHMARK(BM_UntrackedCall);

void BM_AggregateStats256Slots(benchmark::State& state) {
    ShmSegment segment = ShmSegment::create("dbsup-bench-" + std::to_string(getpid()), 256, "");
    std::mutex labels;
    SupervisorView view;
    for (std::size_t i = 0; i < 256; ++i) {
        ShmWorkerSlot& slot = segment.slot(i);
        slot.add(Counter::jobs_succeeded, i * 100);
        for (int t = 0; t < 200; ++t) slot.timer(Timer::job_run).record(1000u + t * 5000u);
        for (const char* task : {"noop", "sleep", "record_event"})
            slot.tasks.find_or_add(task, labels)->seconds.record(20'000);
        view.workers.push_back({i, getpid(), 1});
    }
    RetiredTotals retired;
    for (auto _ : state) benchmark::DoNotOptimize(StatsWriter::document(view, segment, retired));
}
BENCHMARK(BM_AggregateStats256Slots)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
