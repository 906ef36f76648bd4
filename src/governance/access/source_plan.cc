// PlanInSource: the allow-list walk over DuckDB's parse tree (json_serialize_sql)
// and the rendering of the rewritten tree (json_deserialize_sql). See source_plan.h.
#include "governance/access/source_plan.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "common/json_string.h"

namespace clicklake::access {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// The name the governed view has in the statement run on the source.
constexpr const char* kViewName = "_clicklake_governed";

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::toupper(c); });
  return out;
}

// Pure functions over values (no files, no catalog, no settings, no SQL text):
// what a report computes after its rows are filtered.
const std::set<std::string>& ValueFunctions() {
  static const std::set<std::string> k = {
      // aggregates
      "count", "count_star", "sum", "avg", "mean", "min", "max", "any_value", "approx_count_distinct", "median",
      "stddev", "stddev_samp", "stddev_pop", "variance", "var_samp", "var_pop", "arg_min", "arg_max", "bool_and",
      "bool_or",
      // arithmetic and comparisons written as functions
      "+", "-", "*", "/", "//", "%", "round", "abs", "ceil", "ceiling", "floor", "greatest", "least",
      // text
      "||", "concat", "lower", "upper", "lcase", "ucase", "length", "trim", "ltrim", "rtrim", "left", "right",
      "substring", "substr", "replace", "prefix", "suffix", "contains", "starts_with", "ends_with", "~~", "!~~",
      "~~*", "!~~*",
      // time
      "date_trunc", "date_part", "datepart", "year", "month", "day", "hour", "minute", "dayofweek", "isodow", "week",
      "quarter", "epoch", "strftime",
      // NULLs
      "coalesce", "ifnull", "nullif"};
  return k;
}

// Text predicates a WHERE may apply to a text column and a text constant.
const std::set<std::string>& TextPredicates() {
  static const std::set<std::string> k = {"~~", "!~~", "~~*", "!~~*", "prefix", "suffix", "contains", "starts_with",
                                          "ends_with"};
  return k;
}

const std::set<std::string>& Comparisons() {
  static const std::set<std::string> k = {
      "COMPARE_EQUAL",       "COMPARE_NOTEQUAL",         "COMPARE_LESSTHAN",         "COMPARE_GREATERTHAN",
      "COMPARE_LESSTHANOREQUALTO", "COMPARE_GREATERTHANOREQUALTO", "COMPARE_DISTINCT_FROM",
      "COMPARE_NOT_DISTINCT_FROM"};
  return k;
}

bool IsIntegerType(const std::string& t) {
  static const std::set<std::string> k = {"TINYINT",  "SMALLINT",  "INTEGER",  "BIGINT", "HUGEINT",
                                          "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"};
  return k.count(t) > 0;
}
bool IsTimeType(const std::string& t) {
  return t == "DATE" || t == "TIMESTAMP" || t == "TIMESTAMPTZ" || t == "TIMESTAMP WITH TIME ZONE";
}

// A field that is absent, null, an empty array or {"map": []}-like empty.
bool Empty(object o, const char* key) {
  element e;
  if (o[key].get(e)) return true;
  if (e.is_null()) return true;
  if (e.is_array()) return e.get_array().value().size() == 0;
  return false;
}

std::string_view Str(object o, const char* key) {
  std::string_view v;
  if (o[key].get(v)) return {};
  return v;
}

// Walks one statement's tree: true when every part is on the allow-list.
// Collects the view columns it names.
class ShapeCheck {
 public:
  ShapeCheck(const PlannedTable& table, std::string schema, std::string name)
      : schema_(std::move(schema)), name_(std::move(name)) {
    for (size_t i = 0; i < table.columns.size(); i++) types_[Lower(table.columns[i])] = Upper(table.types[i]);
    for (const auto& c : table.columns) canonical_[Lower(c)] = c;
  }

  bool Statement(element doc) {
    bool error = true;
    array statements;
    object statement, node;
    if (doc["error"].get(error) || error || doc["statements"].get(statements) || statements.size() != 1 ||
        statements.at(0).get(statement) || statement["node"].get(node)) {
      return false;
    }
    if (!Empty(statement, "named_param_map")) return false;  // no $1 parameters
    return Select(node);
  }

  const std::set<std::string>& columns() const { return columns_; }
  const std::string& alias() const { return alias_; }

 private:
  bool Select(object node) {
    static const std::set<std::string> kKnown = {"type",   "modifiers", "cte_map", "select_list", "from_table",
                                                 "where_clause", "group_expressions", "group_sets",
                                                 "aggregate_handling", "having", "sample", "qualify"};
    for (auto field : node) {
      // A field this walk does not know may hold expressions it did not check.
      if (!kKnown.count(std::string(field.key))) return false;
    }
    if (Str(node, "type") != "SELECT_NODE") return false;
    object cte_map;
    if (node["cte_map"].get(cte_map) || !Empty(cte_map, "map")) return false;
    if (!Empty(node, "having") || !Empty(node, "qualify") || !Empty(node, "sample")) return false;
    object from;
    if (node["from_table"].get(from) || !Table(from)) return false;
    array list;
    if (node["select_list"].get(list) || list.size() == 0) return false;
    for (element e : list) {
      if (!Value(e)) return false;
      std::string_view alias;
      if (!e["alias"].get(alias) && !alias.empty()) select_aliases_.insert(Lower(alias));
    }
    if (!Empty(node, "group_expressions")) {
      array groups;
      if (node["group_expressions"].get(groups)) return false;
      for (element e : groups)
        if (!Value(e)) return false;
    }
    element where;
    if (!Empty(node, "where_clause") && (node["where_clause"].get(where) || !Filter(where))) return false;
    array modifiers;
    if (!Empty(node, "modifiers") && !node["modifiers"].get(modifiers)) {
      for (element m : modifiers) {
        object mod;
        if (m.get(mod)) return false;
        const std::string_view type = Str(mod, "type");
        if (type == "ORDER_MODIFIER") {
          array orders;
          if (mod["orders"].get(orders)) return false;
          in_order_by_ = true;
          for (element o : orders) {
            element e;
            if (o["expression"].get(e) || !Value(e)) return false;
          }
          in_order_by_ = false;
        } else if (type == "LIMIT_MODIFIER") {
          for (const char* k : {"limit", "offset"}) {
            object bound;
            if (!Empty(mod, k) && (mod[k].get(bound) || Str(bound, "class") != "CONSTANT")) return false;
          }
        } else if (type == "DISTINCT_MODIFIER") {
          array targets;
          if (!Empty(mod, "distinct_on_targets")) {
            if (mod["distinct_on_targets"].get(targets)) return false;
            for (element e : targets)
              if (!Value(e)) return false;
          }
        } else {
          return false;
        }
      }
    }
    return true;
  }

  // The statement's only relation: the expected table, nothing else.
  bool Table(object from) {
    if (Str(from, "type") != "BASE_TABLE" || !Empty(from, "sample") || !Empty(from, "at_clause") ||
        !Empty(from, "column_name_alias")) {
      return false;
    }
    const std::string catalog = Lower(Str(from, "catalog_name"));
    if (!catalog.empty() && catalog != "memory") return false;
    if (Lower(Str(from, "schema_name")) != schema_ || Lower(Str(from, "table_name")) != name_) return false;
    alias_ = std::string(Str(from, "alias"));
    // Columns may be qualified by the alias, or by the table's name without one.
    qualifier_ = Lower(alias_.empty() ? name_ : alias_);
    return true;
  }

  // A column of the view, named plainly or through the qualifier; `type` gets its type.
  bool ViewColumn(element e, std::string* type) {
    object o;
    array names;
    if (e.get(o) || Str(o, "class") != "COLUMN_REF" || o["column_names"].get(names)) return false;
    std::string_view last;
    if (names.size() == 2) {
      std::string_view first;
      if (names.at(0).get(first) || Lower(first) != qualifier_) return false;
      if (names.at(1).get(last)) return false;
    } else if (names.size() != 1 || names.at(0).get(last)) {
      return false;
    }
    auto it = types_.find(Lower(last));
    if (it == types_.end()) return false;
    columns_.insert(canonical_[it->first]);
    if (type) *type = it->second;
    return true;
  }

  // A constant (or one cast of a constant) that may be compared with a column of `column_type`.
  bool Constant(element e, const std::string& column_type) {
    object o;
    if (e.get(o)) return false;
    std::string_view type_id;
    if (Str(o, "class") == "CAST") {
      object child;
      if (o["child"].get(child) || Str(child, "class") != "CONSTANT" || o["cast_type"]["id"].get(type_id)) return false;
    } else if (Str(o, "class") == "CONSTANT") {
      bool is_null = false;
      if (o["value"]["is_null"].get(is_null)) return false;
      if (is_null) return true;
      if (o["value"]["type"]["id"].get(type_id)) return false;
    } else {
      return false;
    }
    return ComparisonKeepsColumnType(column_type, std::string(type_id));
  }

  // WHERE: evaluated possibly before the row filter, so it may only compare
  // view columns with constants (see the header).
  bool Filter(element e) {
    object o;
    if (e.get(o)) return false;
    const std::string_view cls = Str(o, "class"), type = Str(o, "type");
    std::string column_type;
    if (cls == "CONJUNCTION") {
      array children;
      if (o["children"].get(children)) return false;
      for (element c : children)
        if (!Filter(c)) return false;
      return true;
    }
    if (cls == "OPERATOR") {
      array children;
      if (o["children"].get(children) || children.size() == 0) return false;
      if (type == "OPERATOR_NOT") return children.size() == 1 && Filter(children.at(0).value());
      if (type == "OPERATOR_IS_NULL" || type == "OPERATOR_IS_NOT_NULL") {
        return children.size() == 1 && ViewColumn(children.at(0).value(), nullptr);
      }
      if (type == "COMPARE_IN" || type == "COMPARE_NOT_IN") {
        bool first = true;
        for (element c : children) {
          if (first ? !ViewColumn(c, &column_type) : !Constant(c, column_type)) return false;
          first = false;
        }
        return true;
      }
      return false;
    }
    if (cls == "COMPARISON") {
      if (!Comparisons().count(std::string(type))) return false;
      element left, right;
      if (o["left"].get(left) || o["right"].get(right)) return false;
      if (ViewColumn(left, &column_type)) return Constant(right, column_type);
      return ViewColumn(right, &column_type) && Constant(left, column_type);
    }
    if (cls == "BETWEEN") {
      element input, lower, upper;
      if (o["input"].get(input) || o["lower"].get(lower) || o["upper"].get(upper)) return false;
      return ViewColumn(input, &column_type) && Constant(lower, column_type) && Constant(upper, column_type);
    }
    if (cls == "FUNCTION") {
      array children;
      if (!TextPredicates().count(Lower(Str(o, "function_name"))) || !PlainCall(o) ||
          o["children"].get(children) || children.size() != 2) {
        return false;
      }
      return ViewColumn(children.at(0).value(), &column_type) && column_type == "VARCHAR" &&
             Constant(children.at(1).value(), "VARCHAR");
    }
    return false;
  }

  // A call by its bare name: no schema, no FILTER, no ORDER BY inside, no export.
  static bool PlainCall(object o) {
    bool export_state = false;
    if (!o["export_state"].get(export_state) && export_state) return false;
    object order_bys;
    if (!Str(o, "schema").empty() || !Str(o, "catalog").empty() || !Empty(o, "filter")) return false;
    return o["order_bys"].get(order_bys) || Empty(order_bys, "orders");
  }

  // An expression evaluated on rows that passed every filter (select list,
  // GROUP BY, ORDER BY): pure functions of the view's columns and constants.
  bool Value(element e) {
    object o;
    if (e.get(o)) return false;
    const std::string_view cls = Str(o, "class");
    auto all = [&](const char* key) {
      array children;
      if (o[key].get(children)) return false;
      for (element c : children)
        if (!Value(c)) return false;
      return true;
    };
    auto one = [&](const char* key) {
      element c;
      return !o[key].get(c) && Value(c);
    };
    if (cls == "CONSTANT") return true;
    if (cls == "COLUMN_REF") {
      array names;
      if (o["column_names"].get(names) || names.size() == 0 || names.size() > 2) return false;
      // A view column, or the alias of a select-list expression (the view has
      // no other columns) — but not the table itself as a row (`SELECT e FROM
      // t e`), which reads every column without naming one.
      if (names.size() == 2) return ViewColumn(e, nullptr);
      if (ViewColumn(e, nullptr)) return true;
      std::string_view name;
      if (names.at(0).get(name)) return false;
      const std::string n = Lower(name);
      // ORDER BY binds a select-list alias first, even one spelt like the table.
      if (in_order_by_ && select_aliases_.count(n)) return true;
      return n != qualifier_ && n != name_ && n != Lower(alias_);
    }
    if (cls == "FUNCTION") {
      return ValueFunctions().count(Lower(Str(o, "function_name"))) && PlainCall(o) && all("children");
    }
    if (cls == "CAST") return one("child");
    if (cls == "COMPARISON") return Comparisons().count(std::string(Str(o, "type"))) && one("left") && one("right");
    if (cls == "CONJUNCTION") return all("children");
    if (cls == "BETWEEN") return one("input") && one("lower") && one("upper");
    if (cls == "OPERATOR") {
      static const std::set<std::string> kOperators = {"OPERATOR_NOT", "OPERATOR_IS_NULL", "OPERATOR_IS_NOT_NULL",
                                                       "COMPARE_IN", "COMPARE_NOT_IN", "OPERATOR_COALESCE"};
      return kOperators.count(std::string(Str(o, "type"))) && all("children");
    }
    if (cls == "CASE") {
      array checks;
      if (o["case_checks"].get(checks)) return false;
      for (element c : checks) {
        element when, then;
        if (c["when_expr"].get(when) || c["then_expr"].get(then) || !Value(when) || !Value(then)) return false;
      }
      return Empty(o, "else_expr") || one("else_expr");
    }
    return false;  // subqueries, windows, lambdas, parameters, *, COLUMNS(...)
  }

  const std::string schema_, name_;
  std::map<std::string, std::string> types_;      // lower-case column → type
  std::map<std::string, std::string> canonical_;  // lower-case column → as the view spells it
  std::string alias_, qualifier_;
  std::set<std::string> columns_;
  std::set<std::string> select_aliases_;  // lower case
  bool in_order_by_ = false;
};

Result<std::string> Serialize(engine::Connection* conn, const std::string& sql) {
  ASSIGN_OR_RETURN(engine::QueryResult r, conn->Query("SELECT json_serialize_sql(" + engine::QuoteLiteral(sql) + ")"));
  if (r.row_count() != 1 || r.IsNull(0, 0)) return Status::Internal("json_serialize_sql gave no tree");
  return r.GetString(0, 0);
}

}  // namespace

bool ComparisonKeepsColumnType(const std::string& column_type, const std::string& constant_type) {
  const std::string column = Upper(column_type), constant = Upper(constant_type);
  // A text constant is cast to the column's type (a failure names the
  // constant, never a row); against a text column only text compares uncast.
  if (constant == "VARCHAR") return true;
  if (column == "VARCHAR") return false;
  if (IsTimeType(column)) return IsTimeType(constant);  // DATE widens to TIMESTAMP losslessly
  if (IsIntegerType(column)) return IsIntegerType(constant) || constant == "DOUBLE" || constant == "FLOAT";
  if (column == "DOUBLE" || column == "FLOAT") {
    return IsIntegerType(constant) || constant == "DOUBLE" || constant == "FLOAT" || constant == "DECIMAL";
  }
  if (column == "BOOLEAN") return constant == "BOOLEAN";
  return false;  // DECIMAL columns, nested types...: the sandbox
}

Result<std::optional<SourcePlan>> PlanInSource(engine::Connection* conn, const std::string& sql,
                                               const PlannedTable& table) {
  simdjson::dom::parser parser;
  ASSIGN_OR_RETURN(std::string json, Serialize(conn, sql));
  element doc;
  if (parser.parse(json).get(doc)) return Status::Internal("cannot read the query's syntax tree");
  ShapeCheck shape(table, Lower(table.schema), Lower(table.name));
  if (!shape.Statement(doc)) return std::optional<SourcePlan>();

  // The same tree with its table reference replaced by the governed view
  // (under the name or alias the statement's columns may be qualified with).
  object node;
  if (doc["statements"].at(0)["node"].get(node)) return Status::Internal("the query's tree has no node");
  const std::string alias = shape.alias().empty() ? table.name : shape.alias();
  std::string rewritten = "{\"error\":false,\"statements\":[{\"node\":{";
  bool first = true;
  for (auto field : node) {
    rewritten += first ? "" : ",";
    first = false;
    AppendJsonString(field.key, &rewritten);
    rewritten += ":";
    if (field.key != "from_table") {
      rewritten += simdjson::to_string(field.value);
      continue;
    }
    rewritten += "{";
    bool first_key = true;
    object from;
    if (field.value.get(from)) return Status::Internal("the query's table is not an object");
    for (auto f : from) {
      rewritten += first_key ? "" : ",";
      first_key = false;
      AppendJsonString(f.key, &rewritten);
      rewritten += ":";
      if (f.key == "alias") {
        AppendJsonString(alias, &rewritten);
      } else if (f.key == "table_name") {
        AppendJsonString(kViewName, &rewritten);
      } else if (f.key == "schema_name" || f.key == "catalog_name") {
        rewritten += "\"\"";
      } else {
        rewritten += simdjson::to_string(f.value);
      }
    }
    rewritten += "}";
  }
  rewritten += "},\"named_param_map\":[]}]}";
  ASSIGN_OR_RETURN(engine::QueryResult rendered,
                   conn->Query("SELECT json_deserialize_sql(" + engine::QuoteLiteral(rewritten) + ")"));
  if (rendered.row_count() != 1 || rendered.IsNull(0, 0)) return Status::Internal("json_deserialize_sql rendered nothing");
  const std::string body = rendered.GetString(0, 0);

  // What will run is checked again, as parsed from the rendered text.
  ASSIGN_OR_RETURN(std::string again, Serialize(conn, body));
  element doc2;
  if (parser.parse(again).get(doc2)) return Status::Internal("cannot read the rendered query's syntax tree");
  ShapeCheck check(table, "", kViewName);
  if (!check.Statement(doc2) || Lower(check.alias()) != Lower(alias) || check.columns() != shape.columns()) {
    return Status::Internal("the query rendered for the source engine does not match the one checked");
  }
  SourcePlan plan;
  plan.sql = "WITH " + engine::QuoteIdentifier(kViewName) + " AS NOT MATERIALIZED (\n" + table.governed_sql + "\n)\n" +
             body;
  plan.columns.assign(shape.columns().begin(), shape.columns().end());
  return std::optional<SourcePlan>(std::move(plan));
}

}  // namespace clicklake::access
