// Finds out whether a PostgreSQL database is reached through a transaction
// pooler (PgBouncer in transaction mode and its kind), which the config must
// say (pooler = "transaction"): named prepared statements and session settings
// do not survive there. A proxy gives the client a backend pid of its own
// making, so a pid that differs from pg_backend_pid() shows one is in between;
// two open client connections served by the same server backend show it pools
// by transaction. Inconclusive cases (session pooling, round-robin servers)
// report no pooling: the connections still catch the mistake at run time.
#pragma once

#include "shared/db/engine.hpp"

namespace dbsup {

class PoolerProbe {
public:
    enum class Finding { direct, proxy, transaction_pooler };

    /// Opens two connections through engine. @throws Error when it cannot connect.
    static Finding probe(const Engine& engine);
};

}  // namespace dbsup
