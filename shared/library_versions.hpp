// The versions of the libraries this binary runs with, for --version and bug
// reports: the backends' as loaded at run time where they can tell (libpq,
// SQLite), the others as compiled in.
#pragma once

#include <string>

namespace dbsup {

/// "libpq 15.18, libpqxx 6.4.5, SQLite 3.40.1, Boost 1.81.0, ...".
std::string library_versions();

}  // namespace dbsup
