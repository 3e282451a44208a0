#include "shared/monitoring/error_class.hpp"

namespace dbsup {

std::string error_class(const Error& error) {
    if (error.sqlstate().size() >= 2) return "postgresql:" + error.sqlstate().substr(0, 2);
    if (error.sqlite_code() != 0) return "sqlite:" + std::to_string(error.sqlite_code() & 0xff);
    return std::string("dbsupervisor:") + to_string(error.code());
}

}  // namespace dbsup
