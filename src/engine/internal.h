// engine internals shared by engine.cc and sandbox.cc (not part of the public
// header: only src/engine/ includes duckdb.h).
#pragma once

#include <duckdb.h>

#include <memory>

#include "engine/engine.h"

namespace clicklake::engine {

struct QueryProfiler;

struct Database::Impl {
  duckdb_database db = nullptr;
  std::shared_ptr<QueryProfiler> profiler;
};

// A DuckDB error message as a Status (the class prefix picks the code).
Status ErrorStatus(const char* what, const char* detail);
// The ColumnKind of a DuckDB type.
ColumnKind KindOf(duckdb_type t);

}  // namespace clicklake::engine
