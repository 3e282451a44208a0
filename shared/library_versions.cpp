#include "shared/library_versions.hpp"

#include <libpq-fe.h>
#include <spdlog/version.h>
#include <sqlite3.h>

#include <boost/version.hpp>
#include <nlohmann/json.hpp>
#include <pqxx/version>
#include <toml++/toml.h>

namespace dbsup {
namespace {

std::string dotted(int major, int minor, int patch) {
    return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

// PQlibVersion() is major * 10000 + minor since PostgreSQL 10.
std::string libpq_version() {
    const int v = PQlibVersion();
    return std::to_string(v / 10000) + "." + std::to_string(v % 10000);
}

}  // namespace

std::string library_versions() {
    return "libpq " + libpq_version() + ", libpqxx " + PQXX_VERSION + ", SQLite " +
           sqlite3_libversion() + ", Boost " +
           dotted(BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000, BOOST_VERSION % 100) +
           ", toml++ " + dotted(TOML_LIB_MAJOR, TOML_LIB_MINOR, TOML_LIB_PATCH) + ", spdlog " +
           dotted(SPDLOG_VER_MAJOR, SPDLOG_VER_MINOR, SPDLOG_VER_PATCH) + ", nlohmann-json " +
           dotted(NLOHMANN_JSON_VERSION_MAJOR, NLOHMANN_JSON_VERSION_MINOR,
                  NLOHMANN_JSON_VERSION_PATCH);
}

}  // namespace dbsup
