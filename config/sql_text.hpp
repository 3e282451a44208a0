// What a piece of SQL text is made of, without a parser: how many statements
// it holds. Quotes ('...' with '' inside, E'...' with backslashes, "..."),
// comments (--, nested /* */) and PostgreSQL dollar quotes ($tag$...$tag$) are
// skipped, so a ';' inside them separates nothing.
#pragma once

#include <cstddef>
#include <string_view>

namespace dbsup {

/// Statements in `sql`: the ';'-separated parts holding more than blanks and
/// comments (so "SELECT 1;" is one, and "" none).
std::size_t count_sql_statements(std::string_view sql);

}  // namespace dbsup
