// A table only one test uses: created under a unique name when constructed,
// dropped when destroyed (PostgreSQL is shared by every test; a SQLite file
// goes with its temp dir anyway).
#pragma once

#include <memory>
#include <string>

#include "shared/db/connection_pool.hpp"

namespace dbsup::test {

class ScratchTable {
public:
    /// columns: the column definitions, e.g. "id INTEGER PRIMARY KEY, name TEXT".
    ScratchTable(std::shared_ptr<ConnectionPool> pool, const std::string& stem,
                 const std::string& columns);
    /// Never throws: a test that broke its database on purpose leaves it to the temp dir.
    ~ScratchTable();
    ScratchTable(const ScratchTable&) = delete;
    ScratchTable& operator=(const ScratchTable&) = delete;

    const std::string& name() const noexcept { return name_; }

private:
    std::shared_ptr<ConnectionPool> pool_;
    std::string name_;
};

}  // namespace dbsup::test
