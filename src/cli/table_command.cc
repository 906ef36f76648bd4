#include "cli/table_command.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <map>
#include <optional>
#include <ostream>
#include <sstream>

#include "common/clock.h"
#include "delta/table.h"
#include "engine/engine.h"

namespace clicklake::cli {
namespace {

constexpr const char* kUsage =
    "usage: clicklake table history|describe|files|optimize|vacuum TABLE|PATH [options]\n"
    "  TABLE is layer.table under the lake (<lake>/<layer>/<table>); PATH is a Delta table directory\n"
    "options:\n"
    "  --lake DIR           lake directory (default ./lake)\n"
    "  --version N          describe/files: the table as of version N\n"
    "  --limit N            history: newest N commits\n"
    "  --target-size BYTES  optimize: target file size (default 268435456)\n"
    "  --sort-by COLS       optimize: sort rows by these columns (default: table property\n"
    "                       delta.clicklake.zOrderBy or delta.clicklake.sortBy)\n"
    "  --retain HOURS       vacuum: keep files removed less than HOURS ago (default 168)\n"
    "  --force              vacuum: allow --retain under 168 hours\n"
    "  --dry-run            vacuum: list what would be deleted\n";

struct Options {
  std::string command;
  std::string target;
  std::string lake = "lake";
  std::optional<int64_t> version;
  std::optional<int64_t> limit;
  std::optional<int64_t> target_size;
  std::vector<std::string> sort_by;
  std::optional<double> retain_hours;
  bool force = false;
  bool dry_run = false;
};

bool ParseInt(const std::string& s, int64_t* out) {
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0') return false;
  *out = v;
  return true;
}

// Returns "" on success, else the usage error.
std::string Parse(const std::vector<std::string>& args, Options* o) {
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); i++) {
    const std::string& a = args[i];
    auto value = [&](std::string* out) -> bool {
      size_t eq = a.find('=');
      if (eq != std::string::npos) {
        *out = a.substr(eq + 1);
        return true;
      }
      if (i + 1 >= args.size()) return false;
      *out = args[++i];
      return true;
    };
    std::string flag = a.substr(0, a.find('='));
    std::string v;
    int64_t n;
    if (flag == "--lake") {
      if (!value(&o->lake)) return "--lake needs a directory";
    } else if (flag == "--version") {
      if (!value(&v) || !ParseInt(v, &n) || n < 0) return "--version needs a non-negative integer";
      o->version = n;
    } else if (flag == "--limit") {
      if (!value(&v) || !ParseInt(v, &n) || n <= 0) return "--limit needs a positive integer";
      o->limit = n;
    } else if (flag == "--target-size") {
      if (!value(&v) || !ParseInt(v, &n) || n <= 0) return "--target-size needs a positive number of bytes";
      o->target_size = n;
    } else if (flag == "--sort-by") {
      if (!value(&v)) return "--sort-by needs column names";
      std::stringstream ss(v);
      std::string c;
      while (std::getline(ss, c, ',')) {
        if (!c.empty()) o->sort_by.push_back(c);
      }
    } else if (flag == "--retain") {
      if (!value(&v)) return "--retain needs hours";
      char* end = nullptr;
      double h = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || h < 0) return "--retain needs a non-negative number of hours";
      o->retain_hours = h;
    } else if (flag == "--force") {
      o->force = true;
    } else if (flag == "--dry-run") {
      o->dry_run = true;
    } else if (a == "-h" || a == "--help") {
      return "help";
    } else if (!a.empty() && a[0] == '-') {
      return "unknown option " + a;
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 2) return "expected a subcommand and a table";
  o->command = positional[0];
  o->target = positional[1];
  static const std::vector<std::string> kCommands = {"history", "describe", "files", "optimize", "vacuum"};
  if (std::find(kCommands.begin(), kCommands.end(), o->command) == kCommands.end()) {
    return "unknown subcommand " + o->command;
  }
  return "";
}

std::string ResolvePath(const Options& o) {
  namespace fs = std::filesystem;
  const std::string& t = o.target;
  if (t.find('/') != std::string::npos || fs::is_directory(t)) return t;
  size_t dot = t.find('.');
  if (dot != std::string::npos && t.find('.', dot + 1) == std::string::npos) {
    return o.lake + "/" + t.substr(0, dot) + "/" + t.substr(dot + 1);
  }
  return t;
}

std::string FormatMillis(int64_t ms) {
  std::string s = FormatTimestampMicros(ms * 1000);  // ...SS.ffffffZ
  size_t dot = s.find('.');
  return dot == std::string::npos ? s : s.substr(0, dot + 4) + "Z";
}

std::string PartitionText(const std::map<std::string, std::optional<std::string>>& pv) {
  std::string out;
  for (const auto& [k, v] : pv) {
    if (!out.empty()) out += ", ";
    out += k + "=" + (v ? *v : "NULL");
  }
  return out;
}

int64_t NumRecords(const std::string& stats) {
  size_t pos = stats.find("\"numRecords\":");
  return pos == std::string::npos ? -1 : std::strtoll(stats.c_str() + pos + 13, nullptr, 10);
}

// Rows a file's deletion vector deletes (0 without one); numRecords counts
// physical rows, so live rows = numRecords - this.
int64_t DeletedRows(const delta::AddFile& f) { return f.deletion_vector ? f.deletion_vector->cardinality : 0; }

std::string DeletionVectorText(const delta::AddFile& f) {
  if (!f.deletion_vector) return "-";
  const delta::DeletionVector& dv = *f.deletion_vector;
  static const std::map<std::string, std::string> kStorage = {{"u", "file"}, {"i", "inline"}, {"p", "path"}};
  auto it = kStorage.find(dv.storage_type);
  return (it == kStorage.end() ? dv.storage_type : it->second) + ", " + std::to_string(dv.cardinality) + " deleted";
}

int Run(const Options& o, std::ostream& out, std::ostream& err) {
  auto fail = [&](const Status& s) {
    err << "clicklake table " << o.command << ": " << s.ToString() << "\n";
    return 1;
  };
  auto db = engine::Database::Open();
  if (!db.ok()) return fail(db.status());
  std::string path = ResolvePath(o);
  auto table = delta::Table::Open(path, db->get());
  if (!table.ok()) return fail(table.status());
  delta::Table* t = table->get();

  if (o.command == "history") {
    auto h = t->History(o.limit);
    if (!h.ok()) return fail(h.status());
    out << "version | timestamp                | operation | parameters | metrics\n";
    for (const auto& c : *h) {
      out << c.version << " | " << FormatMillis(c.timestamp_ms) << " | " << (c.operation.empty() ? "-" : c.operation)
          << " | " << c.operation_parameters_json << " | " << c.operation_metrics_json << "\n";
    }
    return 0;
  }
  if (o.command == "describe") {
    auto d = t->Describe(o.version);
    if (!d.ok()) return fail(d.status());
    out << "path:              " << d->path << "\n";
    out << "version:           " << d->version << "\n";
    out << "id:                " << d->metadata.id << "\n";
    out << "protocol:          reader " << d->protocol.min_reader_version << ", writer " << d->protocol.min_writer_version
        << "\n";
    if (d->metadata.created_time) out << "created:           " << FormatMillis(*d->metadata.created_time) << "\n";
    out << "partition columns: ";
    for (size_t i = 0; i < d->metadata.partition_columns.size(); i++) out << (i ? ", " : "") << d->metadata.partition_columns[i];
    // Live rows: the files' numRecords (physical rows) minus their DVs' rows.
    auto snap = t->LoadSnapshot(d->version);
    if (!snap.ok()) return fail(snap.status());
    int64_t dv_files = 0, deleted = 0;
    for (const auto& f : snap->files) {
      dv_files += f.deletion_vector ? 1 : 0;
      deleted += DeletedRows(f);
    }
    out << "\nfiles:             " << d->num_files << "\n";
    out << "size bytes:        " << d->size_bytes << "\n";
    out << "records:           " << (d->num_records < 0 ? std::string("unknown") : std::to_string(d->num_records - deleted))
        << "\n";
    out << "deletion vectors:  " << dv_files << " files, " << deleted << " rows deleted\n";
    out << "properties:\n";
    for (const auto& [k, v] : d->metadata.configuration) out << "  " << k << " = " << v << "\n";
    out << "schema:\n";
    for (const auto& f : d->metadata.schema.fields) {
      out << "  " << f.name << " " << f.type << (f.nullable ? "" : " NOT NULL") << "\n";
    }
    return 0;
  }
  if (o.command == "files") {
    auto s = t->LoadSnapshot(o.version);
    if (!s.ok()) return fail(s.status());
    out << "path | size | records | deletion vector | live records | partition\n";
    for (const auto& f : s->files) {
      int64_t n = NumRecords(f.stats);
      out << f.path << " | " << f.size << " | " << (n < 0 ? std::string("?") : std::to_string(n)) << " | "
          << DeletionVectorText(f) << " | " << (n < 0 ? std::string("?") : std::to_string(n - DeletedRows(f))) << " | "
          << PartitionText(f.partition_values) << "\n";
    }
    out << "(" << s->files.size() << " files, " << s->TotalBytes() << " bytes, version " << s->version << ")\n";
    return 0;
  }
  if (o.command == "optimize") {
    delta::OptimizeOptions opts;
    if (o.target_size) opts.target_size = *o.target_size;
    opts.sort_by = o.sort_by;
    auto r = t->Optimize(opts);
    if (!r.ok()) return fail(r.status());
    if (r->version < 0) {
      out << "nothing to optimize\n";
      return 0;
    }
    out << "optimized at version " << r->version << ": " << r->files_removed << " files (" << r->bytes_removed
        << " bytes) -> " << r->files_added << " files (" << r->bytes_added << " bytes), " << r->rows << " rows\n";
    return 0;
  }
  // vacuum
  delta::VacuumOptions opts;
  opts.retain_hours = o.retain_hours;
  opts.force = o.force;
  opts.dry_run = o.dry_run;
  auto r = t->Vacuum(opts);
  if (!r.ok()) return fail(r.status());
  for (const auto& p : r->deleted) out << (o.dry_run ? "would delete " : "deleted ") << p << "\n";
  out << (o.dry_run ? "would delete " : "deleted ") << r->deleted.size() << " files (" << r->bytes_deleted << " bytes)\n";
  return 0;
}

}  // namespace

int RunTableCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Options o;
  std::string problem = Parse(args, &o);
  if (problem == "help") {
    out << kUsage;
    return 0;
  }
  if (!problem.empty()) {
    err << "clicklake table: " << problem << "\n" << kUsage;
    return 2;
  }
  return Run(o, out, err);
}

}  // namespace clicklake::cli
