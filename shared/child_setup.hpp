// What a process we spawn (a worker, a command task's program) must not
// inherit from ours, set up in the child between fork and exec: only
// async-signal-safe calls.
#pragma once

namespace dbsup::child_setup {

/// Marks every descriptor above stderr close-on-exec (database sockets, the
/// shared-memory segment, the metrics listener). Marked, not closed: Boost.Process
/// reports a failed exec through a pipe of its own that must stay open until exec.
void close_on_exec_above_stderr() noexcept;

/// Unblocks every signal and restores SIGPIPE's default action: a worker blocks
/// its stop signals and ignores SIGPIPE, and a program it runs must not inherit that.
void default_signals() noexcept;

}  // namespace dbsup::child_setup
