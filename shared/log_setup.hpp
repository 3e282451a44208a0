// The process's logger, set up once at the process edge from LogOptions: text
// lines on stderr (colours on a terminal), or one JSON object per line. Under
// systemd, whose journal reads stderr ($JOURNAL_STREAM names it), text lines
// start with the syslog priority "<N>" so journald keeps each line's level,
// and without a timestamp of ours (the journal stamps them).
#pragma once

#include <cstddef>
#include <optional>

#include "shared/log_options.hpp"

namespace dbsup {

class LogSetup {
public:
    /// slot: the worker's, logged with each JSON line; none in the supervisor.
    static void apply(const LogOptions& options, std::optional<std::size_t> slot = std::nullopt);
    /// Whether stderr is the stream $JOURNAL_STREAM ("device:inode") names.
    static bool stderr_is_journal() noexcept;
};

}  // namespace dbsup
