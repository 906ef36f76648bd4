// Lineage: events of a real pipeline run, validated against the OpenLineage
// JSON Schemas by python3-jsonschema; the HTTP transport against a local server
// that fails first; spilling when the endpoint is down or the queue is full;
// the declared Gold column lineage against the tables the pipeline writes.
#include "governance/lineage/lineage.h"

#include <httplib.h>
#include <simdjson.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <set>

#include "common/raw_event.h"
#include "common/test_util.h"
#include "governance/testing/local_receiver.h"
#include "delta/table.h"
#include "engine/engine.h"
#include "log/event_log.h"
#include "pipeline/gold/gold.h"

namespace clicklake::governance::lineage {
namespace {

using clicklake::testing::TempDir;

// Runs the OpenLineage schema validator over a JSON-lines file; returns its output.
std::pair<int, std::string> Validate(const std::string& jsonl) {
  const std::string script = clicklake::testing::SourceDir() + "/src/governance/lineage/validate_openlineage.py";
  const std::string schemas = clicklake::testing::SharedDir() + "/data/openlineage";
  const std::string out = jsonl + ".validation";
  const std::string cmd = "python3 " + script + " " + schemas + " " + jsonl + " >" + out + " 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return {WEXITSTATUS(rc), text};
}

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

std::string Str(simdjson::dom::element e) { return std::string(std::string_view(e)); }

struct Parsed {
  std::string type, run_id, job, parent_run;
  std::vector<std::string> outputs;       // dataset names
  std::set<std::string> output_facets;    // "dataset:facet"
  std::set<std::string> input_facets;
};

Parsed Parse(const std::string& line) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(line);
  Parsed p;
  p.type = Str(doc["eventType"]);
  p.run_id = Str(doc["run"]["runId"]);
  p.job = Str(doc["job"]["name"]);
  simdjson::dom::element parent;
  if (doc["run"]["facets"]["parent"].get(parent) == simdjson::SUCCESS)
    p.parent_run = Str(parent["run"]["runId"]);
  for (simdjson::dom::element d : doc["outputs"].get_array()) {
    std::string name = Str(d["name"]);
    p.outputs.push_back(name);
    for (auto [k, v] : d["facets"].get_object()) p.output_facets.insert(name + ":" + std::string(k));
    simdjson::dom::object of;
    if (d["outputFacets"].get(of) == simdjson::SUCCESS)
      for (auto [k, v] : of) p.output_facets.insert(name + ":" + std::string(k));
  }
  for (simdjson::dom::element d : doc["inputs"].get_array()) {
    std::string name = Str(d["name"]);
    for (auto [k, v] : d["facets"].get_object()) p.input_facets.insert(name + ":" + std::string(k));
    simdjson::dom::object inf;
    if (d["inputFacets"].get(inf) == simdjson::SUCCESS)
      for (auto [k, v] : inf) p.input_facets.insert(name + ":" + std::string(k));
  }
  return p;
}

class LineageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.Set("lake.dir", dir_.path());
    config_.Set("log.partitions", "2");
    auto log = log::OpenEventLog(config_);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    log_ = std::move(log).value();
    options_.lake_dir = dir_.path();
    options_.config.Set("privacy.key_file", JoinPath(key_dir_.path(), "pii.key"));
    options_.compaction = false;
  }
  void TearDown() override {
    if (log_) EXPECT_OK(log_->Close());
  }

  void Append(int n, int first) {
    std::vector<log::LogEntry> entries;
    const char* names[] = {"Product Viewed", "Product Added", "Checkout Started", "Order Completed"};
    for (int i = first; i < first + n; i++) {
      RawEvent e;
      e.received_at_us = 1714564800000000LL + i * 1000000LL;
      e.source = "web";
      e.protocol = "segment";
      e.client_ip = "203.0.113.7";
      e.user_agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";
      std::string user = "u" + std::to_string(i % 5);
      e.payload = std::string(R"({"type":"track","event":")") + names[i % 4] + R"(","userId":")" + user +
                  R"(","messageId":"m)" + std::to_string(i) +
                  R"(","properties":{"revenue":12.5},"context":{"page":{"url":"https://shop.example/p?utm_source=news&utm_campaign=spring"}}})";
      if (i % 9 == 0) e.payload = R"({"type":"identify","userId":")" + user + R"(","messageId":"id)" +
                                  std::to_string(i) + R"(","traits":{"plan":"pro","country":"DE"}})";
      log::LogEntry entry;
      entry.key = user;
      EncodeRawEvent(e, &entry.value);
      entries.push_back(std::move(entry));
    }
    ASSERT_OK(log_->Append(std::move(entries)));
  }

  TempDir dir_, key_dir_;
  Config config_;
  std::unique_ptr<log::EventLog> log_;
  pipeline::PipelineOptions options_;
};

TEST_F(LineageTest, PipelineRunsEmitValidOpenLineageEvents) {
  LineageOptions lo;
  lo.lake_dir = dir_.path();
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<LineageEmitter> emitter, LineageEmitter::Start(lo));
  auto observer = std::make_shared<LineageObserver>(emitter);
  options_.observers.push_back(observer);
  ASSERT_OK_AND_ASSIGN(auto runner, pipeline::MicroBatchRunner::Create(options_, log_.get()));
  Append(40, 0);
  ASSERT_OK_AND_ASSIGN(auto b0, runner->RunOnce());
  Append(30, 40);
  ASSERT_OK_AND_ASSIGN(auto b1, runner->RunOnce());
  ASSERT_GE(b1.batch_id, 1);
  ASSERT_TRUE(b1.gold) << b1.gold_error;
  // Three quality check runs of batch 1 (each check its own test job: one passing, one
  // failing its assertion, one that could not run), a failed batch and a compaction,
  // as the runner would report them.
  observer->EmitQualityRun(b1.batch_id, "null_spike", "silver.events", b1.versions.at("silver.events"),
                           {{.name = "null_spike [column=user_key]", .assertion = "not_null", .column = "user_key",
                             .success = true, .severity = "warn", .expected = "<= 0.05", .actual = "0",
                             .observed = 0.0, .row_count = 30},
                            {.name = "null_spike [column=page_url]", .assertion = "not_null", .column = "page_url",
                             .success = true, .severity = "warn", .expected = "<= 0.05", .actual = "0.01",
                             .observed = 0.01, .row_count = 30}},
                           b1.finished_us, b1.finished_us + 1000);
  observer->EmitQualityRun(b1.batch_id, "volume_anomaly", "silver.events", b1.versions.at("silver.events"),
                           {{.name = "volume_anomaly [source=web event_name=page_viewed]", .assertion = "volume",
                             .success = false, .severity = "error", .expected = "|z| <= 3", .actual = "z = -4.2",
                             .observed = -4.2}},
                           b1.finished_us, b1.finished_us + 1000);
  observer->EmitQualityRun(b1.batch_id, "no_negative_revenue", "silver.events", std::nullopt,
                           {{.name = "no_negative_revenue", .assertion = "sql", .success = false, .severity = "error"}},
                           b1.finished_us, b1.finished_us + 1000, "the check could not run: no such column revenu");
  observer->OnBatchStarted(2, b1.finished_us + 2000);
  observer->OnBatchFailed(2, Status::IOError("disk full writing silver.events"));
  observer->OnCompacted("silver.events", b1.versions.at("silver.events") + 1);
  emitter->Flush();

  const std::string file = lo.FilePath();
  auto [rc, report] = Validate(file);
  EXPECT_EQ(rc, 0) << report;

  // Every run: START first, then exactly one COMPLETE or FAIL.
  std::map<std::string, std::vector<Parsed>> runs;
  std::map<std::string, std::string> batch_run;  // job microbatch run ids in order
  for (const auto& line : Lines(file)) {
    Parsed p = Parse(line);
    runs[p.run_id].push_back(p);
  }
  int microbatches = 0, gold_models = 0, tests = 0, failed = 0, compactions = 0;
  std::set<std::string> gold_jobs;
  std::map<std::string, std::string> test_jobs;  // job → its final event type
  const std::string batch1_run = observer->BatchRunId(b1.batch_id);
  for (const auto& [id, events] : runs) {
    ASSERT_EQ(events.size(), 2u) << id;
    EXPECT_EQ(events[0].type, "START") << events[0].job;
    EXPECT_TRUE(events[1].type == "COMPLETE" || events[1].type == "FAIL") << events[1].type;
    const Parsed& end = events[1];
    if (end.job == "microbatch" && end.type == "COMPLETE") {
      ++microbatches;
      EXPECT_TRUE(end.output_facets.count("bronze.events:outputStatistics"));
      EXPECT_TRUE(end.output_facets.count("silver.events:schema"));
      EXPECT_TRUE(end.output_facets.count("silver.events:dataSource"));
      EXPECT_TRUE(end.output_facets.count("silver.events:version"));
    }
    if (end.job == "microbatch" && end.type == "FAIL") ++failed;
    if (end.job.rfind("gold.", 0) == 0) {
      ++gold_models;
      gold_jobs.insert(end.job);
      EXPECT_FALSE(end.parent_run.empty());
      ASSERT_EQ(end.outputs.size(), 1u);
      EXPECT_TRUE(end.output_facets.count(end.outputs[0] + ":columnLineage")) << end.job;
      EXPECT_TRUE(end.output_facets.count(end.outputs[0] + ":schema")) << end.job;
    }
    if (end.job.rfind("quality.silver.events.", 0) == 0) {
      ++tests;
      test_jobs[end.job] = end.type;
      EXPECT_EQ(end.parent_run, batch1_run) << end.job;
      EXPECT_TRUE(end.input_facets.count("silver.events:dataQualityAssertions")) << end.job;
      EXPECT_TRUE(end.input_facets.count("silver.events:dataQualityMetrics")) << end.job;
    }
    if (end.job == "compaction.silver.events") ++compactions;
  }
  EXPECT_EQ(microbatches, 2);
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(tests, 3);
  EXPECT_EQ(test_jobs, (std::map<std::string, std::string>{{"quality.silver.events.null_spike", "COMPLETE"},
                                                          {"quality.silver.events.volume_anomaly", "COMPLETE"},
                                                          {"quality.silver.events.no_negative_revenue", "FAIL"}}));
  EXPECT_EQ(compactions, 1);
  EXPECT_TRUE(gold_jobs.count("gold.fact_session_daily"));
  EXPECT_TRUE(gold_jobs.count("gold.fact_funnel_daily"));
  EXPECT_GE(gold_models, 13);
}

TEST_F(LineageTest, GoldColumnLineageCoversEveryColumnOfEveryGoldTable) {
  ASSERT_OK_AND_ASSIGN(auto runner, pipeline::MicroBatchRunner::Create(options_, log_.get()));
  Append(40, 0);
  ASSERT_OK_AND_ASSIGN(auto b0, runner->RunOnce());
  ASSERT_TRUE(b0.gold) << b0.gold_error;
  ASSERT_OK_AND_ASSIGN(auto db, engine::Database::Open());
  auto schema_of = [&](const std::string& dataset) -> std::set<std::string> {
    std::string path = dataset;
    path[path.find('.')] = '/';
    auto t = delta::Table::Open(JoinPath(dir_.path(), path), db.get());
    EXPECT_TRUE(t.ok()) << dataset << ": " << t.status().ToString();
    if (!t.ok()) return {};
    auto s = (*t)->LoadSnapshot();
    EXPECT_TRUE(s.ok());
    std::set<std::string> cols;
    for (const auto& f : s->schema().fields) cols.insert(f.name);
    return cols;
  };
  const auto inputs = GoldModelInputs();
  for (const char* table : pipeline::gold::kGoldTables) {
    std::string dataset = table;
    dataset[dataset.find('/')] = '.';
    const auto& declared = GoldColumnLineage(dataset);
    ASSERT_FALSE(declared.empty()) << dataset << " has no column lineage in gold_columns.toml";
    ASSERT_TRUE(inputs.count(dataset) && !inputs.at(dataset).empty()) << dataset << ": no inputs declared";
    const std::set<std::string> actual = schema_of(dataset);
    for (const auto& column : actual)
      EXPECT_TRUE(declared.count(column) || declared.count("*")) << dataset << "." << column << " not declared";
    for (const auto& [column, fields] : declared) {
      if (column != "*") {
        EXPECT_TRUE(actual.count(column)) << dataset << "." << column << " declared but not in the table";
      }
      EXPECT_FALSE(fields.empty()) << dataset << "." << column;
      for (const auto& f : fields) {
        const auto& in = inputs.at(dataset);
        EXPECT_NE(std::find(in.begin(), in.end(), f.dataset), in.end())
            << dataset << "." << column << " reads " << f.dataset << ", not among the model's inputs";
        EXPECT_TRUE(schema_of(f.dataset).count(f.field)) << dataset << "." << column << ": " << f.dataset << "."
                                                         << f.field << " does not exist";
      }
    }
  }
}

RunEvent SampleEvent(const std::string& type, const std::string& run_id) {
  RunEvent e;
  e.event_type = type;
  e.run_id = run_id;
  e.job_name = "backfill";
  e.job_type = "COMMAND";
  e.event_time_us = 1714564800000000LL;
  e.inputs.push_back({.name = "bronze.events", .resolve_schema = false});
  DatasetInfo out{.name = "silver.events", .version = 7};
  out.schema = {{"event_id", "string"}, {"event_ts", "timestamp"}};
  out.row_count = 42;
  out.bytes = 4096;
  e.outputs.push_back(out);
  return e;
}

TEST(LineageHttp, PostsToTheEndpointWithRetriesAndSpillsWhenItIsDown) {
  TempDir dir;
  // A local OpenLineage endpoint (as Marquez) that fails the first POST.
  governance::testing::LocalReceiver endpoint(/*fail_first=*/1);
  LineageOptions lo;
  lo.lake_dir = dir.path();
  lo.url = endpoint.url();
  lo.http_backoff_us = 1000;
  ASSERT_OK_AND_ASSIGN(auto emitter, LineageEmitter::Start(lo));
  const std::string run = NewRunId();
  emitter->Emit(SampleEvent("START", run));
  emitter->Emit(SampleEvent("COMPLETE", run));
  emitter->Flush();
  auto bodies = endpoint.bodies();
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_EQ(endpoint.posts()[0].path, "/api/v1/lineage");
  EXPECT_EQ(endpoint.posts()[0].content_type, "application/json");
  EXPECT_EQ(endpoint.requests(), 3);  // the first attempt got a 500 and was retried
  EXPECT_EQ(emitter->stats().posted, 2);
  EXPECT_EQ(emitter->stats().http_failures, 1);
  EXPECT_FALSE(FileSystem::Default()->Exists(lo.FilePath()));  // nothing spilled
  const std::string posted = dir.Sub("posted.jsonl");
  {
    std::ofstream f(posted);
    for (const auto& b : bodies) f << b << "\n";
  }
  auto [rc, report] = Validate(posted);
  EXPECT_EQ(rc, 0) << report;
  EXPECT_EQ(Parse(bodies[0]).type, "START");
  EXPECT_EQ(Parse(bodies[1]).type, "COMPLETE");

  // The endpoint goes away: the event lands in the lake file instead.
  endpoint.Stop();
  emitter->Emit(SampleEvent("FAIL", NewRunId()));
  emitter->Flush();
  EXPECT_EQ(emitter->stats().spilled, 1);
  auto spilled = Lines(lo.FilePath());
  ASSERT_EQ(spilled.size(), 1u);
  EXPECT_EQ(Parse(spilled[0]).type, "FAIL");
}

TEST(LineageHttp, EmitNeverWaitsForASlowEndpoint) {
  TempDir dir;
  std::atomic<bool> release{false};
  httplib::Server server;
  server.Post("/api/v1/lineage", [&](const httplib::Request&, httplib::Response& res) {
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    res.status = 200;
  });
  int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  LineageOptions lo;
  lo.lake_dir = dir.path();
  lo.url = "http://127.0.0.1:" + std::to_string(port);
  lo.queue_capacity = 2;
  {
    ASSERT_OK_AND_ASSIGN(auto emitter, LineageEmitter::Start(lo));
    for (int i = 0; i < 20; ++i) emitter->Emit(SampleEvent("START", NewRunId()));
    // The sender holds at most one event and the queue two: the rest went to the file at once.
    EXPECT_GE(emitter->stats().spilled, 17);
    EXPECT_GE(static_cast<int>(Lines(lo.FilePath()).size()), 17);
    release = true;
    emitter->Flush();
    EXPECT_EQ(emitter->stats().posted + emitter->stats().spilled, 20);
  }
  server.stop();
  t.join();
}

TEST(LineageOptionsTest, FromConfigAndErrors) {
  Config c;
  c.Set("lake.dir", "/tmp/lake");
  c.Set("lineage.url", "ftp://nowhere");
  LineageOptions o = LineageOptions::FromConfig(c);
  EXPECT_EQ(o.FilePath(), "/tmp/lake/_clicklake/lineage/events.jsonl");
  EXPECT_EQ(o.DatasetNamespace(), "file:///tmp/lake");
  EXPECT_STATUS(LineageEmitter::Start(o), kInvalidArgument);
  o.url.clear();
  o.file = "none";
  EXPECT_STATUS(LineageEmitter::Start(o), kInvalidArgument);
}

}  // namespace
}  // namespace clicklake::governance::lineage
