// The dbsupervisor executable: everything happens in Cli, the process edge.
#include "supervisor/cli.hpp"

int main(int argc, char** argv) { return dbsup::Cli::run(argc, argv); }
