// bench/activate: the diff of a MEMBERS-row audience against its snapshot with
// PCT% of it changed (half changed fields, a quarter left, a quarter new),
// compared in the same run with (a) DuckDB scanning the model's table and the
// snapshot once each (the least any diff must read), and (b) the first, full
// send of the audience. Then the next change sent under a 50 requests/s limit, to
// show the send rate is the destination's limit, not clicklake's.
//
// usage: activate_bench LAKE_DIR [MEMBERS=1000000] [PCT=1]
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "activate/activate.h"
#include "common/clock.h"
#include "delta/table.h"
#include "engine/engine.h"

using namespace clicklake;

namespace {

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "activate_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}
#define CHECK_OK(what, expr)                  \
  do {                                        \
    const auto& _r = (expr);                  \
    if (!_r.ok()) Die(what, internal::ToStatus(_r)); \
  } while (0)

double Seconds(int64_t us) { return us / 1e6; }

// gold.audience at `generation`: members i in [0, n) except the removed ones,
// plus new ones; scores of the changed ones differ.
std::string AudienceSql(int64_t n, int64_t pct_bp, int generation) {
  // pct_bp: basis points changed per generation (100 = 1%). Of every 10,000 rows,
  // pct_bp/2 change, pct_bp/4 leave and pct_bp/4 new ones arrive.
  const std::string g = std::to_string(generation);
  const std::string changed = std::to_string(pct_bp / 2), left = std::to_string(pct_bp / 4);
  const int64_t rows = n + generation * n * pct_bp / 40000;
  return "SELECT 'u' || i AS user_key, 'plan' || (i % 3) AS plan, "
         "(i % 97 + CASE WHEN " + g + " > 0 AND (i * 7 + " + g + ") % 10000 < " + changed + " THEN " + g +
         " ELSE 0 END)::BIGINT AS score FROM range(" + std::to_string(rows) + ") t(i) WHERE NOT (" + g +
         " > 0 AND (i * 13 + " + g + ") % 10000 < " + left + " AND i < " + std::to_string(n) + ")";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: activate_bench LAKE_DIR [MEMBERS=1000000] [PCT=1]\n");
    return 2;
  }
  const std::string lake = argv[1];
  const int64_t n = argc > 2 ? std::stoll(argv[2]) : 1'000'000;
  const int64_t pct_bp = static_cast<int64_t>((argc > 3 ? std::stod(argv[3]) : 1.0) * 100);

  // The destination: a local webhook receiver that counts records.
  httplib::Server server;
  std::atomic<int64_t> records{0}, requests{0};
  server.Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    requests++;
    int64_t k = 0;
    for (size_t p = req.body.find("{\"op\":"); p != std::string::npos; p = req.body.find("{\"op\":", p + 1)) k++;
    records += k;
    res.set_content("{}", "application/json");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread listener([&] { server.listen_after_bind(); });

  auto db = engine::Database::Open();
  CHECK_OK("engine", db);
  auto conn = (*db)->Connect();
  CHECK_OK("engine", conn);
  delta::Schema schema;
  schema.fields = {{"user_key", "string"}, {"plan", "string"}, {"score", "long"}};
  auto write_generation = [&](int generation) {
    auto t = delta::Table::OpenOrCreate(lake + "/gold/audience", schema, {}, {}, db->get());
    CHECK_OK("gold.audience", t);
    auto txn = (*t)->StartTransaction();
    for (const auto& f : txn->read_snapshot().files) txn->RemoveFile(f);
    CHECK_OK("write", txn->WriteFiles(conn->get(), AudienceSql(n, pct_bp, generation)));
    CHECK_OK("commit", txn->Commit());
  };
  auto config_for = [&](const std::string& name, int batch, double rate) {
    auto c = Config::Parse("[lake]\ndir = \"" + lake + "\"\n[[activate.syncs]]\nname = \"" + name +
                           "\"\nmodel = \"SELECT user_key, plan, score FROM gold.audience\"\nprimary_key = "
                           "\"user_key\"\nmode = \"mirror\"\ntrigger = \"manual\"\n[activate.syncs.destination]\n"
                           "type = \"webhook\"\nbase_url = \"http://127.0.0.1:" + std::to_string(port) +
                           "\"\npath = \"/hook\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nbatch_size = " +
                           std::to_string(batch) + "\nrate_limit = " + std::to_string(rate) + "\nburst = 1\n");
    CHECK_OK("config", c);
    return *c;
  };
  auto run = [&](const Config& c, const std::string& name) {
    records = 0;
    requests = 0;
    auto r = activate::RunSync(c, name);
    CHECK_OK("sync " + name, r);
    if (r->status != "success") Die("sync " + name, Status::Internal(r->status + ": " + r->error_summary));
    return *r;
  };

  write_generation(0);
  Config big = config_for("audience", 1000, 100000);
  const activate::SyncRunResult full = run(big, "audience");
  const int64_t full_records = records;
  write_generation(1);

  // Baseline: DuckDB scanning the model's table and the snapshot once each.
  int64_t scan_us;
  {
    CHECK_OK("attach", delta::AttachTable(conn->get(), "gold_audience", lake + "/gold/audience", std::nullopt));
    CHECK_OK("attach", delta::AttachTable(conn->get(), "snap", lake + "/activate/audience_snapshot", std::nullopt));
    const int64_t t0 = SystemClock()->MonotonicMicros();
    CHECK_OK("scan", (*conn)->Query("SELECT count(*), sum(hash(user_key, plan, score)) FROM gold_audience"));
    CHECK_OK("scan", (*conn)->Query("SELECT count(*), sum(hash(sync_key, row_hash)) FROM snap"));
    scan_us = SystemClock()->MonotonicMicros() - t0;
  }
  const activate::SyncRunResult incr = run(big, "audience");
  const int64_t incr_records = records;
  const int64_t expected_changes = incr.added + incr.changed + incr.removed;

  std::printf("audience of %lld members, %.2f%% changed per generation (webhook, mirror, 1000 records/request)\n",
              static_cast<long long>(n), pct_bp / 100.0);
  std::printf("| run | rows sent | requests | diff s | send s | total s |\n| --- | --- | --- | --- | --- | --- |\n");
  std::printf("| full send (first run) | %lld | %lld | %.2f | %.2f | %.2f |\n", static_cast<long long>(full_records),
              static_cast<long long>(full.requests), Seconds(full.diff_us), Seconds(full.send_us),
              Seconds(full.duration_us));
  std::printf("| incremental (+%lld ~%lld -%lld) | %lld | %lld | %.2f | %.2f | %.2f |\n",
              static_cast<long long>(incr.added), static_cast<long long>(incr.changed),
              static_cast<long long>(incr.removed), static_cast<long long>(incr_records),
              static_cast<long long>(incr.requests), Seconds(incr.diff_us), Seconds(incr.send_us),
              Seconds(incr.duration_us));
  std::printf("baseline: DuckDB scan of gold.audience + the snapshot: %.2f s\n", Seconds(scan_us));
  std::printf("ratios: diff / scan = %.2f; incremental run / full send = %.3f; rows sent / rows changed = %.3f\n",
              static_cast<double>(incr.diff_us) / static_cast<double>(scan_us),
              static_cast<double>(incr.duration_us) / static_cast<double>(full.duration_us),
              static_cast<double>(incr_records) / static_cast<double>(std::max<int64_t>(1, expected_changes)));
  if (incr_records != expected_changes) {
    std::fprintf(stderr, "activate_bench: sent %lld rows for %lld changes\n", static_cast<long long>(incr_records),
                 static_cast<long long>(expected_changes));
    return 1;
  }

  // Rate-limited: the next change at 50 requests/s, in about 100 requests.
  write_generation(2);
  const double limit = 50;
  activate::SyncRunOptions dry;
  dry.dry_run = true;
  auto planned = activate::RunSync(big, "audience", dry);
  CHECK_OK("dry run", planned);
  const int64_t changes = planned->added + planned->changed + planned->removed;
  const int batch = static_cast<int>(std::clamp<int64_t>((changes + 99) / 100, 1, 1000));
  Config limited = config_for("audience", batch, limit);
  const activate::SyncRunResult slow = run(limited, "audience");
  const double rate = static_cast<double>(slow.requests) / Seconds(slow.send_us);
  std::printf("rate limit %.0f requests/s, %d records/request: %lld rows in %lld requests, %.2f s sending = %.1f "
              "requests/s (%.2f of the limit; the first request takes the burst of 1)\n",
              limit, batch, static_cast<long long>(records.load()), static_cast<long long>(slow.requests),
              Seconds(slow.send_us), rate, rate / limit);
  server.stop();
  listener.join();
  return 0;
}
