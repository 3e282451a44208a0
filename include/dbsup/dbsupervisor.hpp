// dbsupervisor as a library: the one header a program includes to run the whole
// dbsupervisor command line (supervisor, workers, every command) with C++ task
// handlers of its own.
//
//     #include <dbsup/dbsupervisor.hpp>
//
//     int main(int argc, char** argv) {
//         return dbsup::run(argc, argv, [](dbsup::TaskRegistry& tasks) {
//             tasks.add("resize", [](const dbsup::Job& job, const nlohmann::json& payload,
//                                    dbsup::Session& db) {
//                 db.execute("INSERT INTO thumbnails (job_id, size) VALUES ($1, $2)",
//                            {job.id, payload.value("size", std::int64_t{200})});
//             });
//         });
//     }
//
// A handler runs in the job's transaction on the queue's database, which
// commits together with the job's completion (exactly once); throwing fails
// the attempt (retried), dbsup::PermanentJobError ends it dead at once,
// dbsup::SnoozeJob puts it back for later. With [worker] mode = "async",
// tasks.add_async("name", handler) takes a coroutine,
// dbsup::Awaitable<void>(const Job&, const nlohmann::json&, AsyncSession&),
// run on the worker's event loop (README: Async). Workers exec the program's own
// executable, so every worker has the handlers. CMake: find_package(dbsupervisor)
// and link dbsupervisor::dbsupervisor; or pkg-config dbsupervisor.
#pragma once

#include "shared/db/async_session.hpp"
#include "shared/db/database_manager.hpp"
#include "shared/db/session.hpp"
#include "shared/queue/job.hpp"
#include "worker/permanent_job_error.hpp"
#include "worker/snooze_job.hpp"
#include "worker/task_registry.hpp"

namespace dbsup {

/// Runs dbsupervisor's command line with the program's handlers; returns the
/// process exit code (see `--help`).
int run(int argc, char** argv, const TaskRegistrar& register_tasks = {});

}  // namespace dbsup
