#include "enrich/parse_ua_tool.h"

#include <CLI/CLI.hpp>
#include <istream>
#include <ostream>

#include "common/config.h"
#include "enrich/text_util.h"

namespace clicklake::enrich {
namespace {

void AppendField(std::string_view key, const std::optional<std::string>& value, bool first, std::string* out) {
  if (!first) out->push_back(',');
  AppendJsonString(key, out);
  out->push_back(':');
  if (value) {
    AppendJsonString(*value, out);
  } else {
    out->append("null");
  }
}

}  // namespace

std::string UserAgentToJson(const UserAgent& ua) {
  std::string out;
  out.reserve(256);
  out.push_back('{');
  AppendField("ua_family", ua.ua_family, true, &out);
  AppendField("ua_major", ua.ua_major, false, &out);
  AppendField("ua_minor", ua.ua_minor, false, &out);
  AppendField("ua_patch", ua.ua_patch, false, &out);
  AppendField("os_family", ua.os_family, false, &out);
  AppendField("os_major", ua.os_major, false, &out);
  AppendField("os_minor", ua.os_minor, false, &out);
  AppendField("os_patch", ua.os_patch, false, &out);
  AppendField("os_patch_minor", ua.os_patch_minor, false, &out);
  AppendField("device_family", ua.device_family, false, &out);
  AppendField("device_brand", ua.device_brand, false, &out);
  AppendField("device_model", ua.device_model, false, &out);
  out.push_back('}');
  return out;
}

int RunParseUaTool(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err) {
  CLI::App app{"Parse user agents, one per line on stdin, by the uap-core rules; print one JSON object per line.",
               "clicklake tools parse-ua"};
  std::string regexes;
  std::string config_file;
  app.add_option("--regexes", regexes,
                 "uap-core regexes.yaml (default: enrich.ua_regexes, else the one scripts/setup unpacked)");
  app.add_option("--config", config_file, "clicklake TOML config to read enrich.ua_regexes from");
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 pops from the back
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err);
  }

  UaParserOptions options;
  if (!regexes.empty()) {
    options.regexes_path = regexes;
  } else if (!config_file.empty()) {
    auto config = Config::LoadFile(config_file);
    if (!config.ok()) {
      err << "error: " << config.status().ToString() << "\n";
      return 1;
    }
    options.regexes_path = config->GetString("enrich.ua_regexes", "");
  }
  auto parser = UaParser::Open(options);
  if (!parser.ok()) {
    err << "error: " << parser.status().ToString() << "\n";
    return 1;
  }
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out << UserAgentToJson((*parser)->Parse(line)) << '\n';
    // Flush when no more input is buffered, so an interactive or coprocess
    // caller sees each answer; piped bulk input stays block-buffered.
    if (in.rdbuf()->in_avail() <= 0) out.flush();
  }
  out.flush();
  if (in.bad()) {
    err << "error: reading stdin failed\n";
    return 1;
  }
  return 0;
}

}  // namespace clicklake::enrich
