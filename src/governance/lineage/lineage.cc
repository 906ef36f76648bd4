// OpenLineage events: JSON, the background sender and its transports.
#include "governance/lineage/lineage.h"

#include <httplib.h>
#include <openssl/rand.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <sstream>

#include "common/file_system.h"
#include "common/json_string.h"
#include "common/logging.h"
#include "delta/table.h"
#include "engine/engine.h"

namespace clicklake::governance::lineage {
namespace {

constexpr const char* kProducer = "urn:clicklake:lineage";
constexpr const char* kEventSchema = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
constexpr const char* kFacetBase = "https://openlineage.io/spec/facets/";

// `"key":{"_producer":...,"_schemaURL":".../<file>.json#/$defs/<file>",` — the caller adds the fields and "}".
void OpenFacet(std::string* out, const char* key, const char* version, const char* file) {
  *out += '"';
  *out += key;
  *out += "\":{\"_producer\":\"";
  *out += kProducer;
  *out += "\",\"_schemaURL\":\"";
  *out += kFacetBase;
  *out += version;
  *out += '/';
  *out += file;
  *out += ".json#/$defs/";
  *out += file;
  *out += '"';
}

std::string Rfc3339(int64_t us) {
  time_t secs = static_cast<time_t>(us / 1000000);
  int64_t frac = us % 1000000;
  if (frac < 0) {
    frac += 1000000;
    --secs;
  }
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(frac));
  return buf;
}

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void AppendDataset(const DatasetInfo& d, bool output, const LineageOptions& options, std::string* out) {
  const std::string ns = options.DatasetNamespace();
  *out += "{\"namespace\":";
  AppendJsonString(ns, out);
  *out += ",\"name\":";
  AppendJsonString(d.name, out);
  *out += ",\"facets\":{";
  OpenFacet(out, "dataSource", "1-0-1", "DatasourceDatasetFacet");
  *out += ",\"name\":";
  AppendJsonString(ns, out);
  *out += ",\"uri\":";
  AppendJsonString(ns, out);
  *out += '}';
  if (!d.schema.empty()) {
    *out += ',';
    OpenFacet(out, "schema", "1-2-0", "SchemaDatasetFacet");
    *out += ",\"fields\":[";
    int pos = 0;
    for (const auto& [name, type] : d.schema) {
      if (pos) *out += ',';
      *out += "{\"name\":";
      AppendJsonString(name, out);
      *out += ",\"type\":";
      AppendJsonString(type, out);
      *out += ",\"ordinal_position\":" + std::to_string(++pos) + "}";
    }
    *out += "]}";
  }
  if (d.version) {
    *out += ',';
    OpenFacet(out, "version", "1-0-1", "DatasetVersionDatasetFacet");
    *out += ",\"datasetVersion\":\"" + std::to_string(*d.version) + "\"}";
  }
  if (!d.column_lineage.empty()) {
    *out += ',';
    OpenFacet(out, "columnLineage", "1-2-0", "ColumnLineageDatasetFacet");
    *out += ",\"fields\":{";
    bool first = true;
    for (const auto& [column, inputs] : d.column_lineage) {
      if (!first) *out += ',';
      first = false;
      AppendJsonString(column, out);
      *out += ":{\"inputFields\":[";
      for (size_t i = 0; i < inputs.size(); ++i) {
        if (i) *out += ',';
        *out += "{\"namespace\":";
        AppendJsonString(ns, out);
        *out += ",\"name\":";
        AppendJsonString(inputs[i].dataset, out);
        *out += ",\"field\":";
        AppendJsonString(inputs[i].field, out);
        *out += ",\"transformations\":[{\"type\":";
        AppendJsonString(inputs[i].type, out);
        *out += ",\"subtype\":";
        AppendJsonString(inputs[i].subtype, out);
        *out += "}]}";
      }
      *out += "]}";
    }
    *out += "}}";
  }
  if (!d.assertions.empty()) {
    *out += ',';
    OpenFacet(out, "dataQualityAssertions", "1-1-0", "DataQualityAssertionsDatasetFacet");
    *out += ",\"assertions\":[";
    for (size_t i = 0; i < d.assertions.size(); ++i) {
      const Assertion& a = d.assertions[i];
      if (i) *out += ',';
      *out += "{\"assertion\":";
      AppendJsonString(a.assertion, out);
      *out += ",\"name\":";
      AppendJsonString(a.name, out);
      *out += std::string(",\"success\":") + (a.success ? "true" : "false") + ",\"severity\":";
      AppendJsonString(a.severity, out);
      if (!a.column.empty()) {
        *out += ",\"column\":";
        AppendJsonString(a.column, out);
      }
      if (!a.expected.empty()) {
        *out += ",\"expected\":";
        AppendJsonString(a.expected, out);
      }
      if (!a.actual.empty()) {
        *out += ",\"actual\":";
        AppendJsonString(a.actual, out);
      }
      *out += '}';
    }
    *out += "]}";
  }
  *out += '}';
  if (!output && !d.assertions.empty()) {
    // The checks' observed values as metrics of the dataset checked, by column
    // (the whole dataset's under the check's name).
    *out += ",\"inputFacets\":{";
    OpenFacet(out, "dataQualityMetrics", "1-0-3", "DataQualityMetricsInputDatasetFacet");
    std::optional<int64_t> rows;
    for (const Assertion& a : d.assertions)
      if (a.row_count) rows = a.row_count;
    if (rows) *out += ",\"rowCount\":" + std::to_string(*rows);
    *out += ",\"columnMetrics\":{";
    bool first = true;
    for (const Assertion& a : d.assertions) {
      if (!a.observed) continue;
      if (!first) *out += ',';
      first = false;
      AppendJsonString(a.column.empty() ? a.name : a.column, out);
      std::ostringstream v;
      v.precision(17);
      v << *a.observed;
      *out += ":{\"count\":" + v.str() + "}";
    }
    *out += "}}}";
  }
  if (output && (d.row_count || d.bytes || d.file_count)) {
    *out += ",\"outputFacets\":{";
    OpenFacet(out, "outputStatistics", "1-0-2", "OutputStatisticsOutputDatasetFacet");
    if (d.row_count) *out += ",\"rowCount\":" + std::to_string(*d.row_count);
    if (d.bytes) *out += ",\"size\":" + std::to_string(*d.bytes);
    if (d.file_count) *out += ",\"fileCount\":" + std::to_string(*d.file_count);
    *out += "}}";
  }
  *out += '}';
}

}  // namespace

LineageOptions LineageOptions::FromConfig(const Config& config) {
  LineageOptions o;
  o.enabled = config.GetBool("lineage.enabled", o.enabled);
  o.lake_dir = config.lake_dir();
  o.file = config.GetString("lineage.file", o.file);
  o.url = config.GetString("lineage.url", o.url);
  o.api_key = config.GetString("lineage.api_key", o.api_key);
  o.job_namespace = config.GetString("lineage.namespace", o.job_namespace);
  o.dataset_namespace = config.GetString("lineage.dataset_namespace", o.dataset_namespace);
  o.queue_capacity = static_cast<int>(config.GetInt("lineage.queue_capacity", o.queue_capacity));
  o.http_attempts = static_cast<int>(config.GetInt("lineage.http_attempts", o.http_attempts));
  o.http_backoff_us = config.GetDurationMicros("lineage.http_backoff", o.http_backoff_us);
  o.http_timeout_us = config.GetDurationMicros("lineage.http_timeout", o.http_timeout_us);
  return o;
}

std::string LineageOptions::FilePath() const {
  if (file == "none") return "";
  if (!file.empty()) return file;
  return JoinPath(lake_dir, "_clicklake/lineage/events.jsonl");
}

std::string LineageOptions::DatasetNamespace() const {
  if (!dataset_namespace.empty()) return dataset_namespace;
  std::error_code ec;
  auto abs = std::filesystem::weakly_canonical(std::filesystem::absolute(lake_dir, ec), ec);
  std::string path = abs.string();
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return "file://" + path;
}

std::string NewRunId() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) {
    // Never expected; fall back on the clock so the id is still unique enough.
    int64_t t = NowMicros();
    for (int i = 0; i < 16; ++i) b[i] = static_cast<unsigned char>(t >> ((i % 8) * 8)) ^ static_cast<unsigned char>(i * 37);
  }
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  char out[37];
  std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return out;
}

std::string ToJson(const RunEvent& e, const LineageOptions& options) {
  std::string out;
  out.reserve(1024);
  out += "{\"eventType\":";
  AppendJsonString(e.event_type, &out);
  out += ",\"eventTime\":\"" + Rfc3339(e.event_time_us ? e.event_time_us : NowMicros()) + "\"";
  out += std::string(",\"producer\":\"") + kProducer + "\",\"schemaURL\":\"" + kEventSchema + "\"";
  out += ",\"run\":{\"runId\":";
  AppendJsonString(e.run_id, &out);
  out += ",\"facets\":{";
  bool first = true;
  auto sep = [&] {
    if (!first) out += ',';
    first = false;
  };
  if (!e.parent_run_id.empty()) {
    sep();
    OpenFacet(&out, "parent", "1-2-0", "ParentRunFacet");
    out += ",\"run\":{\"runId\":";
    AppendJsonString(e.parent_run_id, &out);
    out += "},\"job\":{\"namespace\":";
    AppendJsonString(options.job_namespace, &out);
    out += ",\"name\":";
    AppendJsonString(e.parent_job, &out);
    out += "}}";
  }
  if (e.nominal_start_us) {
    sep();
    OpenFacet(&out, "nominalTime", "1-0-1", "NominalTimeRunFacet");
    out += ",\"nominalStartTime\":\"" + Rfc3339(*e.nominal_start_us) + "\"";
    if (e.nominal_end_us) out += ",\"nominalEndTime\":\"" + Rfc3339(*e.nominal_end_us) + "\"";
    out += '}';
  }
  if (!e.error_message.empty()) {
    sep();
    OpenFacet(&out, "errorMessage", "1-0-1", "ErrorMessageRunFacet");
    out += ",\"message\":";
    AppendJsonString(e.error_message, &out);
    out += ",\"programmingLanguage\":\"C++\"}";
  }
  // The test facet on a test job's run: one execution per assertion.
  std::vector<const Assertion*> tests;
  for (const auto& d : e.inputs)
    for (const auto& a : d.assertions) tests.push_back(&a);
  if (!tests.empty() && e.event_type != "START") {
    sep();
    OpenFacet(&out, "test", "1-0-1", "TestRunFacet");
    out += ",\"tests\":[";
    for (size_t i = 0; i < tests.size(); ++i) {
      if (i) out += ',';
      out += "{\"name\":";
      AppendJsonString(tests[i]->name, &out);
      out += std::string(",\"status\":\"") + (tests[i]->success ? "pass" : "fail") + "\",\"severity\":";
      AppendJsonString(tests[i]->severity, &out);
      out += ",\"type\":";
      AppendJsonString(tests[i]->assertion, &out);
      out += '}';
    }
    out += "]}";
  }
  out += "}},\"job\":{\"namespace\":";
  AppendJsonString(options.job_namespace, &out);
  out += ",\"name\":";
  AppendJsonString(e.job_name, &out);
  out += ",\"facets\":{";
  OpenFacet(&out, "jobType", "2-0-4", "JobTypeJobFacet");
  out += ",\"processingType\":\"BATCH\",\"integration\":\"CLICKLAKE\",\"jobType\":";
  AppendJsonString(e.job_type, &out);
  out += "}}},\"inputs\":[";
  for (size_t i = 0; i < e.inputs.size(); ++i) {
    if (i) out += ',';
    AppendDataset(e.inputs[i], false, options, &out);
  }
  out += "],\"outputs\":[";
  for (size_t i = 0; i < e.outputs.size(); ++i) {
    if (i) out += ',';
    AppendDataset(e.outputs[i], true, options, &out);
  }
  out += "]}";
  return out;
}

// Reads dataset schemas from the Delta log on the sender thread (its own
// in-memory DuckDB: checkpoints are Parquet), cached by (table, version).
// Reads dataset schemas from the Delta log on the sender thread (its own
// in-memory DuckDB: checkpoints are Parquet). A table's schema only changes with
// a metaData action, so the last schema read is reused for a later version when
// the commits in between have none: most events cost a look at a few small
// commit files, not a snapshot replay.
struct LineageEmitter::Resolver {
  std::unique_ptr<engine::Database> db;
  struct Known {
    int64_t version = -1;
    std::vector<std::pair<std::string, std::string>> schema;
  };
  std::map<std::string, Known> tables;  // by dataset name

  static std::string CommitPath(const std::string& table_path, int64_t v) {
    char name[32];
    std::snprintf(name, sizeof name, "%020lld.json", static_cast<long long>(v));
    return JoinPath(JoinPath(table_path, "_delta_log"), name);
  }
  // True when commits (from, to] are all readable and none carries a metaData action.
  static bool SchemaUnchanged(const std::string& table_path, int64_t from, int64_t to) {
    if (to - from > 50) return false;
    for (int64_t v = from + 1; v <= to; ++v) {
      auto text = FileSystem::Default()->ReadFile(CommitPath(table_path, v));
      if (!text.ok() || text->find("\"metaData\"") != std::string::npos) return false;
    }
    return true;
  }
};

LineageEmitter::LineageEmitter(const LineageOptions& options) : options_(options) {
  auto* reg = MetricsRegistry::Global();
  emitted_ = reg->GetCounter("clicklake_lineage_events_total", "OpenLineage run events emitted.");
  spilled_ = reg->GetCounter("clicklake_lineage_spilled_total",
                             "OpenLineage events written to the lake file because HTTP delivery failed or the queue was full.");
  http_failures_ = reg->GetCounter("clicklake_lineage_http_failures_total", "Failed HTTP attempts to deliver lineage.");
}

Result<std::unique_ptr<LineageEmitter>> LineageEmitter::Start(const LineageOptions& options) {
  if (options.url.empty() && options.FilePath().empty())
    return Status::InvalidArgument("lineage: lineage.file = \"none\" needs lineage.url (else events go nowhere)");
  if (!options.url.empty() && options.url.rfind("http://", 0) != 0 && options.url.rfind("https://", 0) != 0)
    return Status::InvalidArgument("lineage.url = '" + options.url + "': expected http://host[:port] or https://...");
  std::unique_ptr<LineageEmitter> e(new LineageEmitter(options));
  e->resolver_ = std::make_unique<Resolver>();
  engine::DatabaseOptions db_options;
  db_options.threads = 1;
  db_options.memory_limit = "256MB";
  ASSIGN_OR_RETURN(e->resolver_->db, engine::Database::Open(db_options));
  e->queue_ = std::make_unique<DeliveryQueue<RunEvent>>(static_cast<size_t>(std::max(1, options.queue_capacity)),
                                                        [p = e.get()](RunEvent& event) { p->Deliver(event); });
  return e;
}

LineageEmitter::~LineageEmitter() { Stop(); }

void LineageEmitter::Stop() {
  if (queue_) queue_->Stop();
}

void LineageEmitter::Emit(RunEvent event) {
  emitted_->Increment();
  {
    std::lock_guard l(mu_);
    ++stats_.emitted;
  }
  if (queue_->Push(std::move(event))) return;
  // Queue full (the endpoint is slow or down for long) or stopping: keep the
  // event in the lake file rather than hold up the caller or lose it.
  for (auto& d : event.inputs) d.resolve_schema = false;
  for (auto& d : event.outputs) d.resolve_schema = false;
  WriteLine(ToJson(event, options_));
  spilled_->Increment();
  std::lock_guard l(mu_);
  ++stats_.spilled;
}

void LineageEmitter::Flush() { queue_->Flush(); }

LineageEmitter::Stats LineageEmitter::stats() const {
  std::lock_guard l(mu_);
  return stats_;
}

void LineageEmitter::ResolveSchemas(RunEvent& event) {
  auto resolve = [&](DatasetInfo& d) {
    if (!d.schema.empty() || !d.resolve_schema) return;
    auto dot = d.name.find('.');
    if (dot == std::string::npos) return;
    const std::string path = JoinPath(options_.lake_dir, d.name.substr(0, dot) + "/" + d.name.substr(dot + 1));
    if (!FileSystem::Default()->Exists(JoinPath(path, "_delta_log"))) return;
    auto& known = resolver_->tables[d.name];
    if (known.version >= 0 && d.version) {
      if (*d.version == known.version ||
          (*d.version > known.version && Resolver::SchemaUnchanged(path, known.version, *d.version))) {
        d.schema = known.schema;
        if (*d.version > known.version) known.version = *d.version;
        return;
      }
    }
    auto table = delta::Table::Open(path, resolver_->db.get());
    if (!table.ok()) return;
    if (!d.version && known.version >= 0) {
      // Unversioned (an input read at its latest): reuse while nothing changed the schema since.
      auto latest = (*table)->LatestVersion();
      if (latest.ok() && *latest >= known.version && Resolver::SchemaUnchanged(path, known.version, *latest)) {
        d.schema = known.schema;
        known.version = *latest;
        return;
      }
    }
    auto snap = (*table)->LoadSnapshot(d.version);
    if (!snap.ok()) return;
    for (const auto& f : snap->schema().fields)
      d.schema.emplace_back(f.name, f.type.empty() || f.type[0] == '{' ? "struct" : f.type);
    if (snap->version >= known.version) known = {snap->version, d.schema};
  };
  for (auto& d : event.inputs) resolve(d);
  for (auto& d : event.outputs) resolve(d);
}

void LineageEmitter::Deliver(RunEvent& event) {
  ResolveSchemas(event);
  const std::string json = ToJson(event, options_);
  if (!options_.url.empty()) {
    if (Post(json)) {
      std::lock_guard l(mu_);
      ++stats_.posted;
      return;
    }
    if (options_.FilePath().empty()) return;  // counted as an HTTP failure; nowhere to spill
    spilled_->Increment();
    std::lock_guard l(mu_);
    ++stats_.spilled;
  }
  WriteLine(json);
  if (options_.url.empty()) {
    std::lock_guard l(mu_);
    ++stats_.written;
  }
}

void LineageEmitter::WriteLine(const std::string& line) {
  const std::string path = options_.FilePath();
  if (path.empty()) return;
  std::lock_guard l(file_mu_);
  FileSystem* fs = FileSystem::Default();
  auto slash = path.rfind('/');
  if (slash != std::string::npos) (void)fs->CreateDirs(path.substr(0, slash));
  auto f = fs->NewAppendableFile(path);
  if (!f.ok()) {
    spdlog::warn("lineage: cannot open {}: {}", path, f.status().ToString());
    return;
  }
  Status s = (*f)->Append(line + "\n");
  if (s.ok()) s = (*f)->Close();
  if (!s.ok()) spdlog::warn("lineage: writing {}: {}", path, s.ToString());
}

bool LineageEmitter::Post(const std::string& json) {
  // Split scheme://host[:port] from a base path (Marquez serves /api/v1/lineage).
  std::string url = options_.url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  const size_t host_start = url.find("://") + 3;
  const size_t path_start = url.find('/', host_start);
  const std::string origin = path_start == std::string::npos ? url : url.substr(0, path_start);
  const std::string base = path_start == std::string::npos ? "" : url.substr(path_start);
  httplib::Client client(origin);
  const time_t secs = static_cast<time_t>(options_.http_timeout_us / 1000000);
  const time_t usecs = static_cast<time_t>(options_.http_timeout_us % 1000000);
  client.set_connection_timeout(secs, usecs);
  client.set_read_timeout(secs, usecs);
  client.set_write_timeout(secs, usecs);
  httplib::Headers headers;
  if (!options_.api_key.empty()) headers.emplace("Authorization", "Bearer " + options_.api_key);
  int64_t backoff = options_.http_backoff_us;
  for (int attempt = 1; attempt <= std::max(1, options_.http_attempts); ++attempt) {
    auto res = client.Post(base + "/api/v1/lineage", headers, json, "application/json");
    if (res && res->status >= 200 && res->status < 300) return true;
    http_failures_->Increment();
    {
      std::lock_guard l(mu_);
      ++stats_.http_failures;
    }
    // 4xx other than 408/429 will not get better by retrying.
    if (res && res->status >= 400 && res->status < 500 && res->status != 408 && res->status != 429) {
      spdlog::warn("lineage: {} refused an event: HTTP {} {}", options_.url, res->status, res->body.substr(0, 200));
      return false;
    }
    if (attempt < options_.http_attempts) {
      queue_->SleepUnlessStopping(backoff);
      backoff *= 2;
    }
  }
  spdlog::warn("lineage: {} unreachable after {} attempts; event kept in {}", options_.url, options_.http_attempts,
               options_.FilePath());
  return false;
}

CommandRun::CommandRun(LineageEmitter* emitter, std::string job_name, std::vector<DatasetInfo> inputs,
                       std::vector<DatasetInfo> outputs)
    : emitter_(emitter) {
  event_.run_id = NewRunId();
  event_.job_name = std::move(job_name);
  event_.job_type = "COMMAND";
  event_.inputs = std::move(inputs);
  event_.outputs = std::move(outputs);
}

void CommandRun::Begin() {
  if (!emitter_) return;
  event_.event_type = "START";
  event_.event_time_us = NowMicros();
  emitter_->Emit(event_);
}

void CommandRun::End(const Status& status, std::vector<DatasetInfo> outputs) {
  if (!emitter_) return;
  event_.event_type = status.ok() ? "COMPLETE" : "FAIL";
  event_.event_time_us = NowMicros();
  event_.error_message = status.ok() ? "" : status.ToString();
  if (!outputs.empty()) event_.outputs = std::move(outputs);
  emitter_->Emit(event_);
  emitter_->Flush();
}

}  // namespace clicklake::governance::lineage
