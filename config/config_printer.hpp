// The resolved configuration as TOML: what `check-config` prints and what the
// supervisor hands its workers through shared memory (ConfigLoader reads it
// back). No password value is ever written: only where it comes from.
#pragma once

#include <string>

#include "config/config.hpp"

namespace dbsup {

class ConfigPrinter {
public:
    static std::string to_toml(const Config& config);
};

}  // namespace dbsup
