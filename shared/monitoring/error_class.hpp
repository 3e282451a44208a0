// The class of a database error, as counted in the stats file
// (queries.errors_by_class): the SQLSTATE class on PostgreSQL ("postgresql:23"
// for integrity violations), the primary result code on SQLite ("sqlite:5" for
// SQLITE_BUSY), or our own code when the database never answered
// ("dbsupervisor:pool_timeout").
#pragma once

#include <string>

#include "shared/errors.hpp"

namespace dbsup {

std::string error_class(const Error& error);

}  // namespace dbsup
