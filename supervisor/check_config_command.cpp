#include "supervisor/check_config_command.hpp"

#include <iostream>

#include "config/config_printer.hpp"
#include "config/password_resolver.hpp"

namespace dbsup {

int CheckConfigCommand::run(const Overrides& overrides) {
    Config config = Cli::load_config(overrides);
    std::cout << ConfigPrinter::to_toml(config);
    // A missing password variable is only a warning here: the operator may be
    // checking the file on another machine than the one that will run it.
    for (const auto& [name, db] : config.databases)
        if (auto problem = PasswordResolver::problem(db))
            std::cerr << "warning: " << *problem << " (an error when running)\n";
    std::cerr << "configuration OK: " << config.source << "\n";
    return kExitOk;
}

}  // namespace dbsup
