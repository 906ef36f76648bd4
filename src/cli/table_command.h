// `clicklake table`: Delta table maintenance from the command line.
//
//   clicklake table history|describe|files|optimize|vacuum TABLE|PATH
//       [--lake DIR] [--version N] [--limit N] [--retain HOURS] [--force] [--dry-run]
//       [--target-size BYTES] [--sort-by COL[,COL...]]
//
// TABLE is `layer.table`, resolved to <lake>/<layer>/<table> (lake default
// ./lake); anything with a '/' or naming a directory is a table path. Built as
// the library cl_table_command (src/delta/CMakeLists.txt) so it depends only on
// delta, engine and common. Stateless; thread-compatible.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace clicklake::cli {

// `args` excludes the program and "table". Returns the exit code: 0 ok,
// 1 operation failed (one line on `err`), 2 usage error.
int RunTableCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace clicklake::cli
