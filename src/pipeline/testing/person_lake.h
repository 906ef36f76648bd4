// Test fixture for privacy erasure (erasure_test, forget_crash_test): a lake
// holding one person ("person-zqx", two anonymous ids, an email, PII in free
// text, a quarantined event, re-keyed rows in older versions) among other
// users, built through the real processor; and the checks the acceptance
// tests share (no trace of the person in any data file of any table, the
// other users' rows unchanged).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/raw_event.h"
#include "common/test_util.h"
#include "delta/table.h"
#include "engine/engine.h"
#include "log/event_log.h"
#include "pipeline/pipeline.h"

namespace clicklake::pipeline::testing {

// Every identifier of the person contains this marker (never hex, never in other rows).
inline constexpr const char* kPersonMarker = "zqx";
inline constexpr const char* kPersonUser = "person-zqx";

inline void AppendSegment(log::EventLog* log, const std::vector<std::string>& payloads, int64_t received_us) {
  std::vector<log::LogEntry> entries;
  for (const auto& payload : payloads) {
    RawEvent e;
    e.received_at_us = received_us;
    e.source = "web";
    e.protocol = "segment";
    e.client_ip = "203.0.113.7";
    e.user_agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";
    e.payload = payload;
    log::LogEntry entry;
    entry.key = "k";
    EncodeRawEvent(e, &entry.value);
    entries.push_back(std::move(entry));
  }
  ASSERT_OK(log->Append(std::move(entries)));
}

// Other users' traffic of day `day` (1 or 2): anonymous page view, identify
// with email, product view, an order, and a quarantined event.
inline std::vector<std::string> OtherUsersDay(int day, int users = 4, const std::string& tag = "") {
  std::vector<std::string> out;
  const std::string d = "2024-05-0" + std::to_string(day);
  for (int i = 1; i <= users; i++) {
    const std::string u = "user-" + std::to_string(i), a = "anon-o" + std::to_string(i);
    const std::string m = "o" + std::to_string(i) + "-" + std::to_string(day) + tag;
    out.push_back(R"({"type":"page","anonymousId":")" + a + R"(","messageId":")" + m + R"(-p","timestamp":")" + d +
                  R"(T09:00:00Z","properties":{"path":"/home"}})");
    out.push_back(R"({"type":"identify","userId":")" + u + R"(","anonymousId":")" + a + R"(","messageId":")" + m +
                  R"(-i","timestamp":")" + d + R"(T09:01:00Z","traits":{"email":"o)" + std::to_string(i) +
                  R"(@example.org","plan":"pro"}})");
    out.push_back(R"({"type":"track","event":"Product Viewed","userId":")" + u + R"(","messageId":")" + m +
                  R"(-v","timestamp":")" + d + R"(T09:02:00Z","properties":{"product_id":"p1"}})");
    out.push_back(R"({"type":"track","event":"Order Completed","userId":")" + u + R"(","messageId":")" + m +
                  R"(-o","timestamp":")" + d + R"(T09:10:00Z","properties":{"revenue":)" + std::to_string(10 + i) +
                  "}}");
    out.push_back(R"({"type":"track","userId":")" + u + R"(","messageId":")" + m + R"(-q","timestamp":")" + d +
                  R"(T09:11:00Z"})");
  }
  return out;
}

// The person: anonymous browsing on day 1 (an email in free text, a
// quarantined event); in the next batch an identify links the first anonymous
// id (re-keying day 1's rows: older versions hold them under the anon key),
// and an order on day 2 from a second anonymous id.
inline std::vector<std::string> PersonBatch1() {
  return {
      R"({"type":"page","anonymousId":"anon-zqx-1","messageId":"zqx-1","timestamp":"2024-05-01T09:00:00Z","properties":{"path":"/home"}})",
      R"({"type":"track","event":"Product Viewed","anonymousId":"anon-zqx-1","messageId":"zqx-2","timestamp":"2024-05-01T09:05:00Z","properties":{"product_id":"p1"}})",
      R"({"type":"track","event":"Product Added","anonymousId":"anon-zqx-1","messageId":"zqx-3","timestamp":"2024-05-01T09:06:00Z","properties":{"note":"call me: pat.zqx@example.com or +1 555 0100 200"}})",
      R"({"type":"track","anonymousId":"anon-zqx-1","messageId":"zqx-4","timestamp":"2024-05-01T09:07:00Z"})",
  };
}
inline std::vector<std::string> PersonBatch2() {
  return {
      R"({"type":"identify","userId":"person-zqx","anonymousId":"anon-zqx-1","messageId":"zqx-5","timestamp":"2024-05-01T09:08:00Z","traits":{"email":"Pat.ZQX@Example.com","phone":"+1 555 0100 200"}})",
      R"({"type":"track","event":"Checkout Started","userId":"person-zqx","anonymousId":"anon-zqx-2","messageId":"zqx-6","timestamp":"2024-05-02T08:00:00Z"})",
      R"({"type":"track","event":"Order Completed","userId":"person-zqx","anonymousId":"anon-zqx-2","messageId":"zqx-7","timestamp":"2024-05-02T08:01:00Z","properties":{"revenue":99}})",
  };
}

inline constexpr int64_t kDay1Us = 1714557600000000LL;  // 2024-05-01T10:00:00Z
inline constexpr int64_t kDayUs = 86400000000LL;

// Builds the lake in three batches (and compacts once, so older versions name
// files that are no longer live).
inline void BuildPersonLake(const PipelineOptions& options, log::EventLog* log) {
  auto runner = MicroBatchRunner::Create(options, log);
  ASSERT_OK(runner.status());
  std::vector<std::string> b1 = OtherUsersDay(1);
  for (auto& p : PersonBatch1()) b1.push_back(p);
  AppendSegment(log, b1, kDay1Us);
  ASSERT_OK((*runner)->Drain());
  std::vector<std::string> b2 = OtherUsersDay(2);
  for (auto& p : PersonBatch2()) b2.push_back(p);
  AppendSegment(log, b2, kDay1Us + kDayUs);
  ASSERT_OK((*runner)->Drain());
  AppendSegment(log, OtherUsersDay(2, 2, "b"), kDay1Us + kDayUs + 3600000000LL);
  ASSERT_OK((*runner)->Drain());
}

// The tables of the lake that can hold a person's rows ("layer/table").
inline std::vector<std::string> PersonalTables(const std::string& lake) {
  std::vector<std::string> out;
  for (const char* layer : {"bronze", "silver", "restricted", "gold"}) {
    const std::string dir = lake + "/" + layer;
    if (!std::filesystem::exists(dir)) continue;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      if (name[0] == '_' || !std::filesystem::exists(e.path() / "_delta_log")) continue;
      out.push_back(std::string(layer) + "/" + name);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A condition over a row `t` that it mentions the person: the marker or one of `ids` (event/session ids).
inline std::string MentionsPerson(const std::vector<std::string>& ids) {
  std::string cond = "lower(CAST(t AS VARCHAR)) LIKE '%" + std::string(kPersonMarker) + "%'";
  for (const auto& id : ids) cond += " OR contains(CAST(t AS VARCHAR), " + engine::QuoteLiteral(id) + ")";
  return "(" + cond + ")";
}

// Rows mentioning the person in any data file stored under the table (every
// version's files, whatever the log says).
// A file a write killed mid-way (no footer: "PAR1" missing at either end) is
// not Parquet and no version names it; it is skipped, counted in `*torn`.
inline int64_t PhysicalHits(engine::Connection* conn, const std::string& table_dir, const std::vector<std::string>& ids,
                            int64_t* torn = nullptr) {
  std::string list;
  for (const auto& e : std::filesystem::recursive_directory_iterator(table_dir)) {
    if (e.path().extension() != ".parquet" || e.path().string().find("_delta_log") != std::string::npos) continue;
    std::ifstream in(e.path(), std::ios::binary);
    char head[4] = {}, tail[4] = {};
    const auto size = std::filesystem::file_size(e.path());
    bool whole = size >= 12 && in.read(head, 4) && in.seekg(-4, std::ios::end) && in.read(tail, 4) &&
                 std::string(head, 4) == "PAR1" && std::string(tail, 4) == "PAR1";
    if (!whole) {
      if (torn) (*torn)++;
      continue;
    }
    list += (list.empty() ? "" : ", ") + engine::QuoteLiteral(e.path().string());
  }
  if (list.empty()) return 0;
  auto r = conn->Query("SELECT count(*) FROM read_parquet([" + list +
                       "], union_by_name = true, hive_partitioning = false) t WHERE " + MentionsPerson(ids));
  EXPECT_OK(r.status());
  return r.ok() ? r->GetInt64(0, 0) : -1;
}

// md5 over the rows of `table` (a view name) that do not mention the person, in a stable order.
inline std::string OthersHash(engine::Connection* conn, const std::string& view, const std::vector<std::string>& ids) {
  auto r = conn->Query("SELECT count(*) || ':' || coalesce(md5(string_agg(CAST(t AS VARCHAR), '|' ORDER BY "
                       "CAST(t AS VARCHAR))), '') FROM " + view + " t WHERE NOT " + MentionsPerson(ids));
  EXPECT_OK(r.status());
  return r.ok() ? r->GetString(0, 0) : "error";
}

}  // namespace clicklake::pipeline::testing
