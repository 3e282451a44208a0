// Base fixture for tests that run once per backend (SQLite file, real PostgreSQL).
#pragma once

#include <gtest/gtest.h>

#include "tests/support/test_databases.hpp"

namespace dbsup::test {

class BackendTest : public ::testing::TestWithParam<TestBackend> {
protected:
    std::shared_ptr<ConnectionPool> make_pool(std::size_t size = 2, std::size_t overflow = 1);
    std::shared_ptr<ConnectionPool> make_pool(const PoolOptions& options) {
        return databases_.pool(GetParam(), options);
    }

    TestDatabases databases_;
};

/// Pool options of `size` + `overflow` connections waiting at most `timeout`.
inline PoolOptions pool_options(std::size_t size, std::size_t overflow,
                                std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    PoolOptions o;
    o.size = size;
    o.max_overflow = overflow;
    o.timeout = timeout;
    return o;
}

inline std::shared_ptr<ConnectionPool> BackendTest::make_pool(std::size_t size,
                                                             std::size_t overflow) {
    return databases_.pool(GetParam(), pool_options(size, overflow));
}

inline std::string backend_param_name(const ::testing::TestParamInfo<TestBackend>& info) {
    return backend_name(info.param);
}

}  // namespace dbsup::test

#define DBSUP_BOTH_BACKENDS(Suite)                                                        \
    INSTANTIATE_TEST_SUITE_P(Backends, Suite,                                             \
                             ::testing::Values(::dbsup::test::TestBackend::sqlite,        \
                                               ::dbsup::test::TestBackend::postgresql),   \
                             ::dbsup::test::backend_param_name)

// PostgreSQL twice: directly and through PgBouncer in transaction pooling mode.
#define DBSUP_ALL_BACKENDS(Suite)                                                         \
    INSTANTIATE_TEST_SUITE_P(Backends, Suite,                                             \
                             ::testing::Values(::dbsup::test::TestBackend::sqlite,        \
                                               ::dbsup::test::TestBackend::postgresql,    \
                                               ::dbsup::test::TestBackend::pgbouncer),    \
                             ::dbsup::test::backend_param_name)
