// The resolved configuration as TOML, for `check-config`. URLs are redacted and no
// password value is ever written: only where it would come from.
#pragma once

#include <string>

#include "config/config.hpp"

namespace dbsup {

class ConfigPrinter {
public:
    static std::string to_toml(const Config& config);
};

}  // namespace dbsup
