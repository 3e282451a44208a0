#include "tests/support/scratch_table.hpp"

#include "shared/db/session.hpp"
#include "tests/support/test_databases.hpp"

namespace dbsup::test {

ScratchTable::ScratchTable(std::shared_ptr<ConnectionPool> pool, const std::string& stem,
                           const std::string& columns)
    : pool_(std::move(pool)), name_(TestDatabases::unique_table(stem)) {
    Session s(pool_, "setup");
    s.execute("CREATE TABLE " + name_ + " (" + columns + ")");
    s.commit();
}

ScratchTable::~ScratchTable() {
    try {
        Session s(pool_, "cleanup");
        s.execute("DROP TABLE IF EXISTS " + name_);
        s.commit();
    } catch (const std::exception&) {
    }
}

}  // namespace dbsup::test
