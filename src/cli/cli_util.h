// Small helpers shared by the subcommands.
#pragma once

#include <CLI/CLI.hpp>

#include <algorithm>
#include <ostream>
#include <string>
#include <vector>

namespace clicklake::cli {

// Parses `args` (without the program and command names) with `app`. Returns -1
// to continue, or the exit code to return (0 after --help, 2 on a usage error).
inline int ParseArgs(CLI::App& app, std::vector<std::string> args, std::ostream& out, std::ostream& err) {
  std::reverse(args.begin(), args.end());  // CLI11 consumes a vector from the back
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return 0;
  } catch (const CLI::ParseError& e) {
    err << app.get_name() << ": " << e.what() << "\n";
    return 2;
  }
  return -1;
}

}  // namespace clicklake::cli
