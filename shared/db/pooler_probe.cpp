#include "shared/db/pooler_probe.hpp"

#include "shared/db/postgres_connection.hpp"
#include "shared/db/result.hpp"

namespace dbsup {
namespace {

std::int64_t server_pid(Connection& connection) {
    return connection.execute("SELECT pg_backend_pid()", {}).scalar<std::int64_t>();
}

}  // namespace

PoolerProbe::Finding PoolerProbe::probe(const Engine& engine) {
    auto first = engine.connect(0);
    const std::int64_t first_server = server_pid(*first);
    auto* postgres = dynamic_cast<PostgresConnection*>(first.get());
    if (!postgres || postgres->backend_pid() == first_server) return Finding::direct;
    // The first connection is idle and still open: a session pooler keeps its
    // server backend for it, a transaction pooler hands it to the next client.
    auto second = engine.connect(0);
    return server_pid(*second) == first_server ? Finding::transaction_pooler : Finding::proxy;
}

}  // namespace dbsup
