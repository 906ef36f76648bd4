// The Gold models' SQL, embedded into the binary at build time from
// src/pipeline/gold/*.sql (CMake generates gold_sql.cc with embed_sql.cmake).
// Internal to cl_gold: other components use gold.h.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace clicklake::pipeline::gold {

struct ModelSql {
  const char* name;  // file name without .sql, e.g. "fact_events"
  const char* sql;   // the file's text
};

// Every embedded file, in the order CMake listed them.
const std::vector<ModelSql>& EmbeddedModels();

// The text of model `name` with trailing whitespace and ';' removed, or "" if
// there is no such file.
std::string ModelText(std::string_view name);

}  // namespace clicklake::pipeline::gold
