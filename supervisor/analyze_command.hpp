// `dbsupervisor analyze --db NAME 'SQL' [--param V ...] [--json]`: the plan of
// one statement on one configured database (see QueryAnalyzer): PostgreSQL
// runs it under EXPLAIN ANALYZE and rolls it back, SQLite explains it without
// running it. Each --param binds $1, $2, ... in order (an integer as a number).
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace dbsup {

struct AnalyzeOptions {
    std::string database = "main";
    std::string sql;
    std::vector<std::string> params;
    bool json = false;
};

class AnalyzeCommand {
public:
    static int run(const Config& config, const AnalyzeOptions& options);
};

}  // namespace dbsup
