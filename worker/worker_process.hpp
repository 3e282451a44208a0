// The worker process: `dbsupervisor worker --shm NAME --slot K --generation G`.
// It attaches its supervisor's segment, reads the resolved configuration from
// it (never the config file), builds its DatabaseManager, checks every
// database once, then heartbeats into its slot until told to stop. The job
// runner arrives with the queue; this loop is its frame.
//
// Signals are blocked and taken synchronously with sigtimedwait() in the main
// loop, so no handler and no global flag exist. TERM/INT: drain and exit 0;
// QUIT: exit at once. Exit codes: worker/exit_codes.hpp.
#pragma once

#include <cstdint>
#include <string>

#include "worker/task_registry.hpp"

namespace dbsup {

class WorkerProcess {
public:
    /// Runs the worker to its end; returns its exit code.
    /// log_file: reopened on SIGUSR1 ("" = plain stderr). register_tasks: the
    /// program's own C++ handlers, added to the configured tasks.
    static int run(const std::string& shm_name, std::size_t slot, std::uint64_t generation,
                   const std::string& log_file = "", const TaskRegistrar& register_tasks = {});
};

}  // namespace dbsup
