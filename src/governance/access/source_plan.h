// Source plans: a governed query that can run whole in the source engine.
//
// The sandbox (engine::Sandbox) runs a user's SQL in a second, locked-down
// DuckDB fed the role's rows through a scan: every query pays a second engine
// and the hand-over of its rows. For the common shape of an analyst's query —
// one SELECT over one granted table, with filters that compare a column with a
// constant, aggregates and ordering — the same answer can be computed in the
// source engine itself, with the role's view as a subquery the user's SQL
// cannot leave. PlanInSource decides whether a statement has that shape and,
// if so, builds the SQL from DuckDB's parse tree of it (never from the text
// the user wrote): the tree is checked against an allow-list, its one table
// reference replaced by the governed view, rendered back to SQL by DuckDB,
// and the rendering parsed and checked again.
//
// Why the allow-list is what it is (the guarantees the sandbox gives):
//   - no file, catalog or setting is reachable: no table functions, no
//     subqueries, CTEs, joins or set operations, and only pure scalar and
//     aggregate functions from a fixed list;
//   - masks and row filters apply before the user's predicates: the view is a
//     subquery, so the user's expressions see masked values only;
//   - nothing of a row the row filter removes can surface in an error: the
//     optimizer may evaluate the user's WHERE before the row filter, so WHERE
//     may only compare a view column with a constant whose type never makes
//     DuckDB cast the column (a VARCHAR column against a number would:
//     "Could not convert string '<value>'..."), with LIKE/prefix/suffix on
//     text; HAVING and QUALIFY (pushed below aggregates) are not accepted.
// Anything else runs in the sandbox as before.
//
// Pure functions of their arguments; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/engine.h"

namespace clicklake::access {

// The one lake table a statement reads, as the role sees it.
struct PlannedTable {
  std::string schema;                // "silver"
  std::string name;                  // "events"
  std::string governed_sql;          // its rows for the role: masks, row filter, allowed columns
  std::vector<std::string> columns;  // the view's columns
  std::vector<std::string> types;    // their DuckDB types after masking
};

struct SourcePlan {
  std::string sql;                   // to run on the source database
  std::vector<std::string> columns;  // the view's columns the statement names (for the audit)
};

// `sql`, one statement engine::Sandbox::Check accepted, as a statement for
// the source engine over `table`'s governed rows; nullopt when its shape is
// not one proven safe there (it then runs in the sandbox). `conn` (any
// connection) parses and renders SQL; nothing of `sql` runs.
Result<std::optional<SourcePlan>> PlanInSource(engine::Connection* conn, const std::string& sql,
                                               const PlannedTable& table);

// Whether comparing a column of DuckDB type `column_type` with a constant of
// type `constant_type` (the type id DuckDB's parse tree gives the constant or
// its cast: "VARCHAR", "INTEGER", "DECIMAL", "DATE", "TIMESTAMP WITH TIME
// ZONE"...) can never fail on the column's values: DuckDB casts the constant,
// or widens the column losslessly.
bool ComparisonKeepsColumnType(const std::string& column_type, const std::string& constant_type);

}  // namespace clicklake::access
