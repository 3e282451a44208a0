#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>
#include <set>
#include <string>

#include "shared/queue/uuid7.hpp"

namespace dbsup {
namespace {

TEST(Uuid7, IsAVersion7Rfc9562IdInCanonicalForm) {
    static const std::regex kForm("[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
    for (int i = 0; i < 1000; ++i) {
        const std::string id = new_uuid7();
        ASSERT_TRUE(std::regex_match(id, kForm)) << id;
    }
}

TEST(Uuid7, IdsAreUniqueAndOrderedByTheirMillisecond) {
    std::set<std::string> seen;
    std::string previous_ms;
    for (int i = 0; i < 100000; ++i) {
        std::string id = new_uuid7();
        const std::string ms = id.substr(0, 8) + id.substr(9, 4);  // the 48-bit timestamp
        ASSERT_GE(ms, previous_ms) << "the timestamp went back";
        previous_ms = ms;
        ASSERT_TRUE(seen.insert(std::move(id)).second) << "a duplicate id after " << i;
    }
}

// A forked child must not repeat its parent's random sequence: the ids the
// child makes next differ from the ones the parent makes next.
TEST(Uuid7, AForkedChildDoesNotRepeatItsParentsIds) {
    (void)new_uuid7();  // the parent's generator is seeded before the fork
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        close(pipe_fds[0]);
        std::string ids;
        for (int i = 0; i < 4; ++i) ids += new_uuid7();
        const bool written = write(pipe_fds[1], ids.data(), ids.size()) ==
                             static_cast<ssize_t>(ids.size());
        _exit(written ? 0 : 1);
    }
    close(pipe_fds[1]);
    std::string parent_ids;
    for (int i = 0; i < 4; ++i) parent_ids += new_uuid7();
    std::string child_ids(parent_ids.size(), '\0');
    ssize_t got = 0;
    while (got < static_cast<ssize_t>(child_ids.size())) {
        ssize_t n = read(pipe_fds[0], child_ids.data() + got, child_ids.size() - static_cast<std::size_t>(got));
        if (n <= 0) break;
        got += n;
    }
    close(pipe_fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_EQ(got, static_cast<ssize_t>(child_ids.size()));
    for (int i = 0; i < 4; ++i) {
        // Compare the random parts only: both may share a millisecond.
        EXPECT_NE(child_ids.substr(i * 36 + 14, 22), parent_ids.substr(i * 36 + 14, 22));
    }
}

}  // namespace
}  // namespace dbsup
