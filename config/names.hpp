// The one rule for names an operator or a job gives: databases, tasks, queues.
// They reach logs, SQL parameters, stats keys and Prometheus labels, so they
// are kept to characters that need no escaping anywhere.
#pragma once

#include <string_view>

namespace dbsup {

/// Letters, digits, _ and -, not starting with a digit or -, 1 to 63 bytes (ASCII).
bool is_valid_name(std::string_view name) noexcept;

/// What is_valid_name() asks for, for error messages.
inline constexpr const char* kNameRule =
    "letters, digits, _ or -, not starting with a digit or -, at most 63 characters";

}  // namespace dbsup
