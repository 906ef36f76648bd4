#include "pipeline/bronze.h"

#include <simdjson.h>

#include "common/clock.h"
#include "common/raw_event.h"
#include "engine/engine.h"

namespace clicklake::pipeline {
namespace {

std::string Base64(std::string_view in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (i < in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    if (i + 1 < in.size()) v |= uint8_t(in[i + 1]) << 8;
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

bool ValidUtf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

}  // namespace

delta::Schema BronzeSchema() {
  delta::Schema s;
  s.fields = {
      {"ingest_id", "string", false},  {"received_at", "timestamp", false}, {"event_date", "date", false},
      {"source", "string", true},      {"protocol", "string", true},        {"client_ip", "string", true},
      {"user_agent", "string", true},  {"payload", "string", true},         {"log_partition", "integer", false},
      {"log_offset", "long", false},
  };
  return s;
}

Status LoadBronzeBatch(engine::Connection* conn, const std::vector<log::LogRecord>& records, int64_t* undecodable) {
  RETURN_IF_ERROR(conn->Execute(
      "CREATE OR REPLACE TABLE bronze_batch (ingest_id VARCHAR, received_at TIMESTAMP, event_date DATE, "
      "source VARCHAR, protocol VARCHAR, client_ip VARCHAR, user_agent VARCHAR, payload VARCHAR, "
      "log_partition INTEGER, log_offset BIGINT)"));
  ASSIGN_OR_RETURN(auto app, conn->CreateAppender("", "bronze_batch"));
  RawEvent ev;
  auto text = [&](const std::string& s) { return ValidUtf8(s) ? app->AppendString(s) : app->AppendString(Base64(s)); };
  for (const auto& r : records) {
    bool decoded = DecodeRawEvent(r.value, &ev).ok();
    if (!decoded) {
      ++*undecodable;
      ev = RawEvent{};
      ev.received_at_us = r.timestamp_ms * 1000;
      ev.protocol = "unknown";
      ev.payload = r.value;
    }
    RETURN_IF_ERROR(app->AppendString(std::to_string(r.partition) + "-" + std::to_string(r.offset)));
    RETURN_IF_ERROR(app->AppendTimestampMicros(ev.received_at_us));
    RETURN_IF_ERROR(app->AppendDate(static_cast<int32_t>(MicrosToDays(ev.received_at_us))));
    RETURN_IF_ERROR(text(ev.source));
    RETURN_IF_ERROR(text(ev.protocol));
    RETURN_IF_ERROR(text(ev.client_ip));
    RETURN_IF_ERROR(text(ev.user_agent));
    // payload stays JSON for every row: bytes that were not a RawEvent (or not UTF-8) are wrapped.
    RETURN_IF_ERROR(decoded && ValidUtf8(ev.payload)
                        ? app->AppendString(ev.payload)
                        : app->AppendString("{\"undecodable_base64\":\"" + Base64(ev.payload) + "\"}"));
    RETURN_IF_ERROR(app->AppendInt32(r.partition));
    RETURN_IF_ERROR(app->AppendInt64(r.offset));
    RETURN_IF_ERROR(app->EndRow());
  }
  return app->Close();
}

}  // namespace clicklake::pipeline
