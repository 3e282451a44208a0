// The operator's queue commands: `init-db`, `enqueue` (one job, or many from
// JSON Lines) and `jobs list|show|retry|cancel|counts`. Each opens the queue's
// database through this process's DatabaseManager, prints a readable answer
// (or JSON with --json) and returns an exit code (see ExitCode).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "worker/task_registry.hpp"

namespace dbsup {

struct EnqueueOptions {
    std::string task;
    std::string payload = "{}";
    std::string queue;
    std::int64_t priority = 0;
    std::optional<std::string> delay;   // "500ms", "10s", "5m", "2h"
    std::optional<std::string> run_at;  // "2026-11-22T12:00:00Z" or epoch seconds
    std::int64_t max_attempts = 0;
    std::optional<std::string> jsonl;   // a file, or "-" for stdin
    std::string unique_key;              // "" = none
    std::optional<std::string> unique_for;  // a duration, with unique_key
};

struct JobsOptions {
    std::string action;  // list, show, retry, cancel, counts, pause, resume
    std::string id;
    std::string queue;  // pause, resume
    std::string state;
    std::string task;
    std::int64_t limit = 20;
    bool all_dead = false;
    bool json = false;
};

class QueueCommands {
public:
    static int init_db(const Config& config);
    /// register_tasks: the program's C++ handlers, whose names are valid tasks too.
    static int enqueue(const Config& config, const EnqueueOptions& options,
                       const TaskRegistrar& register_tasks = {});
    static int jobs(const Config& config, const JobsOptions& options);
};

}  // namespace dbsup
