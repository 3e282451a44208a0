// A task whose handler is a program: `[tasks.NAME] command = ["/path", "arg"]`,
// run once per job with no shell (the words are the argv), in a process group
// of its own, with none of the worker's descriptors or blocked signals:
//   stdin        the job's payload (JSON text)
//   environment  the worker's, plus DBSUP_JOB_ID, DBSUP_JOB_ATTEMPT,
//                DBSUP_JOB_TASK and DBSUP_JOB_QUEUE
//   exit 0       the job succeeded
//   exit 75      (EX_TEMPFAIL) snooze: back to waiting, no attempt spent, for
//                the delay its output names ("dbsup_snooze:<ms>"), else 60 s
//   otherwise    a failure, retried up to max_attempts; the tail of its
//                stdout and stderr is the job's last_error
// At the task's timeout_ms the whole process group is killed (SIGKILL).
// The job's completion commits in the queue's database like any task's.
#pragma once

#include <string>

#include "config/config.hpp"
#include "worker/task_registry.hpp"

namespace dbsup {

class CommandTask {
public:
    static constexpr int kSnoozeExitCode = 75;
    /// The task for config (whose command is not empty), completed in queue_database.
    static TaskDefinition definition(const TaskConfig& config, const std::string& queue_database);
};

}  // namespace dbsup
