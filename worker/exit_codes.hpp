// The contract between a worker process and its supervisor (STYLE point 4).
// The supervisor decides whether to respawn from these codes alone.
#pragma once

namespace dbsup::exit_codes {

constexpr int kDrained = 0;       // normal exit after SIGTERM: do not respawn
constexpr int kHandledError = 1;  // logged fatal error: respawn with backoff
constexpr int kConfigError = 2;   // configuration/initialisation error: never respawn
// Any signal, or any other code, is a crash: claims released, backoff raised.

}  // namespace dbsup::exit_codes
