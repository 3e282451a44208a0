// A task's SQL with `:name` parameters turned into positional `$n` ones, so the
// values are bound from the job's payload and never spliced into the text.
// Quoted strings, quoted identifiers, comments and PostgreSQL `::type` casts are
// left alone.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dbsup {

struct NamedSql {
    std::string sql;                 // with $1..$n
    std::vector<std::string> names;  // names[i] binds $(i+1)

    static NamedSql compile(std::string_view text);
};

}  // namespace dbsup
