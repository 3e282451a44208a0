// dbsup::run, the library's entry point (include/dbsup/dbsupervisor.hpp): only
// libdbsupervisor.so has it; the dbsupervisor executable calls Cli directly.
#include "dbsup/dbsupervisor.hpp"

#include "supervisor/cli.hpp"

namespace dbsup {

int run(int argc, char** argv, const TaskRegistrar& register_tasks) {
    return Cli::run(argc, argv, register_tasks);
}

}  // namespace dbsup
