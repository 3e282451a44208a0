// The SQL of Session's bulk operations, built from a table, its columns and a
// chunk size, for either backend. Identifiers are checked (letters, digits and
// underscores, not starting with a digit, at most 63 bytes, optionally
// "schema.table") and double-quoted; values are never spliced, always bound.
//
//   insert: PostgreSQL COPY ... FROM STDIN; SQLite one INSERT stepped per row.
//   update: PostgreSQL UPDATE ... FROM (VALUES ...) with each value cast to its
//           column's type, SQLite one UPDATE stepped per row.
//   delete: PostgreSQL DELETE ... WHERE key = ANY($1) with the keys as one array,
//           SQLite one DELETE stepped per key.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/database_url.hpp"
#include "shared/db/result.hpp"
#include "shared/monitoring/query_label.hpp"

namespace dbsup {

class BulkStatements {
public:
    /// Rows per PostgreSQL UPDATE statement and keys per DELETE array: large
    /// enough to amortise the round trip, small enough for the 65535-parameter limit.
    static constexpr std::size_t kUpdateRows = 1000;
    static constexpr std::size_t kDeleteKeys = 10000;

    /// @throws Error(usage) naming the operation and the bad identifier.
    BulkStatements(std::string operation, std::string_view table, std::string_view key_column,
                   const std::vector<std::string>& columns);

    /// "name" or "schema"."name"; @throws Error(usage) when name is not an identifier.
    static std::string quote(std::string_view name, std::string_view operation);

    const std::string& table() const noexcept { return table_; }
    const std::vector<std::string>& columns() const noexcept { return columns_; }
    /// The metrics label: "<operation>:<table>:bulk".
    const QueryLabel& label() const noexcept { return label_; }

    /// @throws Error(usage) when a row does not have `width` values.
    void check_widths(const std::vector<Params>& rows, std::size_t width) const;

    /// The query that lists the table's column types (PostgreSQL; $1 = table()).
    static std::string_view column_types_query();
    /// UPDATE for `rows` rows of (key, columns...); types: unquoted name -> SQL type.
    std::string postgres_update(std::size_t rows,
                                const std::map<std::string, std::string>& types) const;
    std::string sqlite_update() const;
    std::string postgres_delete() const;
    std::string sqlite_delete() const;
    /// A PostgreSQL array literal of the keys [begin, end): {"k1","k2"} (escaped).
    static std::string array_literal(const std::vector<Value>& keys, std::size_t begin,
                                     std::size_t end);

private:
    std::string operation_;
    std::string table_;
    std::string key_;
    std::vector<std::string> names_;    // as given, for the type lookup
    std::vector<std::string> columns_;  // quoted
    QueryLabel label_;
};

}  // namespace dbsup
