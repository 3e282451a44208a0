// A job that can never succeed as it is (unknown task, a payload that is not a
// JSON object or lacks a parameter): it goes to dead at once, not to a retry.
#pragma once

#include <stdexcept>

namespace dbsup {

class PermanentJobError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace dbsup
