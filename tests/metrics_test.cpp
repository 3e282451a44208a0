// Shared-memory metrics: histogram bucket and percentile maths, the label table
// under concurrent writers (run under TSan too), and the segment's life cycle.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <thread>

#include "shared/metrics/shm_segment.hpp"
#include "shared/utf8.hpp"

namespace dbsup {
namespace {

TEST(ShmHistogram, BucketsCoverTheirBoundsExactly) {
    EXPECT_EQ(ShmHistogram::bucket_of(0), 0);
    EXPECT_EQ(ShmHistogram::bucket_of(1023), 0);
    EXPECT_EQ(ShmHistogram::bucket_of(1024), 1);
    for (int b = 0; b < ShmHistogram::kBuckets - 1; ++b) {
        std::uint64_t upper = ShmHistogram::upper_bound_ns(b);
        EXPECT_EQ(ShmHistogram::bucket_of(upper), b) << b;
        EXPECT_EQ(ShmHistogram::bucket_of(upper + 1), b + 1) << b;
    }
    EXPECT_EQ(ShmHistogram::bucket_of(~std::uint64_t{0}), ShmHistogram::kBuckets - 1);
    // 100 s still has a bucket of its own below the last.
    EXPECT_LT(ShmHistogram::bucket_of(100'000'000'000ULL), ShmHistogram::kBuckets - 1);
}

TEST(ShmHistogram, QuantilesAreWithinOneSubBucketOfTheTruth) {
    auto h = std::make_unique<ShmHistogram>();
    std::mt19937_64 random(7);
    std::vector<std::uint64_t> values;
    for (int i = 0; i < 10000; ++i) {
        auto v = std::uniform_int_distribution<std::uint64_t>(2'000, 50'000'000)(random);
        values.push_back(v);
        h->record(v);
    }
    std::sort(values.begin(), values.end());
    HistogramSnapshot s = h->snapshot();
    EXPECT_EQ(s.count, 10000u);
    for (double q : {0.5, 0.95, 0.99}) {
        double truth = static_cast<double>(values[static_cast<std::size_t>(q * 10000) - 1]) / 1e9;
        double estimate = s.quantile_seconds(q);
        EXPECT_GE(estimate, truth) << q;
        EXPECT_LE(estimate, truth * 1.26) << q;  // one sub-bucket is at most 25% wide
    }
    EXPECT_EQ(HistogramSnapshot{}.quantile_seconds(0.5), 0.0);
}

TEST(ShmHistogram, SnapshotsAdd) {
    auto a = std::make_unique<ShmHistogram>();
    auto b = std::make_unique<ShmHistogram>();
    a->record(5'000);
    b->record(7'000);
    b->record(9'000);
    HistogramSnapshot s = a->snapshot();
    s.add(b->snapshot());
    EXPECT_EQ(s.count, 3u);
    EXPECT_EQ(s.sum_ns, 21'000u);
}

TEST(ShmLabelTable, ConcurrentWritersAgreeOnOneRowPerLabel) {
    auto table = std::make_unique<ShmLabelTable>();
    std::mutex append;
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 2000; ++i) {
                ShmLabelRow* row = table->find_or_add("task-" + std::to_string(i % 40), append);
                ASSERT_NE(row, nullptr);
                row->counters[0].fetch_add(1, std::memory_order_relaxed);
            }
        });
    // A reader (the supervisor's role) walking the table while it grows.
    std::thread reader([&] {
        for (int i = 0; i < 200; ++i)
            for (std::size_t r = 0; r < table->published(); ++r)
                EXPECT_EQ(table->rows[r].read_name().rfind("task-", 0), 0u);
    });
    for (auto& t : threads) t.join();
    reader.join();
    ASSERT_EQ(table->published(), 40u);
    std::uint64_t total = 0;
    for (std::size_t r = 0; r < 40; ++r) total += table->rows[r].counters[0].load();
    EXPECT_EQ(total, 8u * 2000u);
}

TEST(ShmLabelTable, IsBoundedAndCountsWhatItDropped) {
    auto table = std::make_unique<ShmLabelTable>();
    std::mutex append;
    for (std::size_t i = 0; i < ShmLabelTable::kRows; ++i) {
        // Appended, not "l" + to_string(i): GCC 12's -Wrestrict false positive
        // (its bug 105329) fails Release builds under -Werror.
        std::string label = "l";
        label += std::to_string(i);
        ASSERT_NE(table->find_or_add(label, append), nullptr);
    }
    EXPECT_EQ(table->find_or_add("one-too-many", append), nullptr);
    EXPECT_EQ(table->dropped.load(), 1u);
    EXPECT_EQ(table->find_or_add(std::string(100, 'x'), append), nullptr);
}

// Named after the test process, computed once so a forked child uses the same name.
std::string test_segment_name() {
    static const std::string name = "dbsup-test-" + std::to_string(getpid());
    return name;
}

TEST(ShmSegment, WorkersAttachAndSeeTheConfigAndEachOthersSlots) {
    const std::string name = test_segment_name();
    ShmSegment owner = ShmSegment::create(name, 8, "[worker]\nthreads = 2\n");
    pid_t child = fork();
    if (child == 0) {
        try {
            ShmSegment seen = ShmSegment::attach(name);
            if (seen.config() != "[worker]\nthreads = 2\n" || seen.slot_count() != 8) _exit(3);
            seen.slot(5).add(Counter::jobs_succeeded, 42);
            seen.slot(5).timer(Timer::job_run).record(1'000'000);
            _exit(0);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "child: %s\n", e.what());
            _exit(4);
        }
    }
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_EQ(WEXITSTATUS(status), 0);
    EXPECT_EQ(owner.slot(5).get(Counter::jobs_succeeded), 42u);
    EXPECT_EQ(owner.slot(5).timer(Timer::job_run).snapshot().count, 1u);
    EXPECT_EQ(owner.slot(4).get(Counter::jobs_succeeded), 0u);
    EXPECT_THROW(owner.slot(8), std::out_of_range);
    EXPECT_EQ(owner.header().supervisor_pid.load(), static_cast<std::uint64_t>(getpid()));
}

// Memory is reserved slot by slot as workers are spawned, not for all 256 up front.
TEST(ShmSegment, IsSparseUntilASlotIsReserved) {
    const std::string name = test_segment_name();
    ShmSegment owner = ShmSegment::create(name, ShmHeader::kMaxWorkers, "");
    auto allocated = [&] {
        struct stat st {};
        EXPECT_EQ(::stat(("/dev/shm/" + name).c_str(), &st), 0);
        return static_cast<std::size_t>(st.st_blocks) * 512;
    };
    const std::size_t empty = allocated();
    EXPECT_LT(empty, 2 * sizeof(ShmHeader) + 65536) << "every slot was allocated";
    owner.reserve_slot(7);
    EXPECT_GE(allocated(), empty + sizeof(ShmWorkerSlot));
    owner.slot(7).add(Counter::jobs_claimed);
    EXPECT_EQ(owner.slot(7).get(Counter::jobs_claimed), 1u);
    EXPECT_THROW(owner.reserve_slot(ShmHeader::kMaxWorkers), std::out_of_range);
}

TEST(ShmSegment, IsRemovedWithItsOwner) {
    { ShmSegment owner = ShmSegment::create(test_segment_name(), 1, ""); }
    EXPECT_THROW(ShmSegment::attach(test_segment_name()), std::runtime_error);
}

TEST(ShmSegment, AStaleSegmentOfADeadSupervisorIsRemovedAtStart) {
    const std::string name = test_segment_name();  // before fork: the child uses it too
    pid_t child = fork();
    if (child == 0) {
        // A "supervisor" that dies without cleaning up.
        ShmSegment* leaked = new ShmSegment(ShmSegment::create(name, 2, "old"));
        (void)leaked;
        _exit(0);
    }
    waitpid(child, nullptr, 0);
    EXPECT_NO_THROW(ShmSegment::attach(name)) << "the dead supervisor left no segment";
    ShmSegment fresh = ShmSegment::create(name, 2, "new");
    EXPECT_EQ(fresh.config(), "new");
    EXPECT_EQ(fresh.header().supervisor_pid.load(), static_cast<std::uint64_t>(getpid()));
}

TEST(ShmSegment, ALiveSupervisorsSegmentIsNotTaken) {
    ShmSegment first = ShmSegment::create(test_segment_name(), 1, "");
    EXPECT_FALSE(ShmSegment::remove_if_stale(test_segment_name()));
    EXPECT_THROW(ShmSegment::create(test_segment_name(), 1, ""), std::runtime_error);
}

TEST(ShmSegment, AttachRejectsWhatIsNotOurs) {
    EXPECT_THROW(ShmSegment::attach("dbsup-test-does-not-exist"), std::runtime_error);
    EXPECT_THROW(ShmSegment::create(test_segment_name(), 0, ""), std::runtime_error);
    EXPECT_THROW(ShmSegment::create(test_segment_name(), 257, ""), std::runtime_error);
}

}  // namespace
}  // namespace dbsup

namespace dbsup {
namespace {

TEST(Utf8, ValidatesAndCutsOnCharacterBoundaries) {
    EXPECT_TRUE(utf8::valid("plain ascii"));
    EXPECT_TRUE(utf8::valid("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));  // é € 😀
    EXPECT_FALSE(utf8::valid("\xFF"));
    EXPECT_FALSE(utf8::valid("\xC3"));              // cut short
    EXPECT_FALSE(utf8::valid("\xC0\xAF"));          // overlong '/'
    EXPECT_FALSE(utf8::valid("\xED\xA0\x80"));      // a surrogate
    EXPECT_FALSE(utf8::valid("\xF4\x90\x80\x80"));  // beyond U+10FFFF
    EXPECT_EQ(utf8::cut("\xC3\xA9\xC3\xA9", 3), 2u);
    EXPECT_EQ(utf8::cut("\xC3\xA9\xC3\xA9", 4), 4u);
    EXPECT_EQ(utf8::cut("abc", 2), 2u);
}

TEST(ShmLabelTable, CutsALongNameAtACharacterBoundary) {
    auto table = std::make_unique<ShmLabelTable>();
    std::mutex append;
    std::string name;
    for (int i = 0; i < 35; ++i) name += "\xC3\xA9";  // 70 bytes
    ShmLabelRow* row = table->find_or_add(name, append);
    ASSERT_NE(row, nullptr);
    EXPECT_EQ(row->read_name().size(), 62u);
    EXPECT_TRUE(utf8::valid(row->read_name()));
}

}  // namespace
}  // namespace dbsup
