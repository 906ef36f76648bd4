#include "enrich/experiment.h"

#include <gtest/gtest.h>

#include "common/test_util.h"

namespace clicklake::enrich {
namespace {

simdjson::dom::element ParseDom(simdjson::dom::parser& parser, const std::string& json) {
  simdjson::dom::element e;
  EXPECT_EQ(parser.parse(json).get(e), simdjson::SUCCESS) << json;
  return e;
}

// Runs ExtractExperiment through both simdjson APIs and checks they agree.
Experiment ExtractBoth(const std::vector<ExperimentPath>& paths, const std::string& json) {
  simdjson::dom::parser dom;
  Experiment a = ExtractExperiment(paths, ParseDom(dom, json));
  simdjson::ondemand::parser od;
  simdjson::padded_string padded(json);
  simdjson::ondemand::document doc;
  EXPECT_EQ(od.iterate(padded).get(doc), simdjson::SUCCESS);
  Experiment b = ExtractExperiment(paths, doc);
  EXPECT_EQ(a, b) << json;
  return a;
}

TEST(JsonPathTest, ParsesAndValidates) {
  ASSERT_OK_AND_ASSIGN(JsonPath p, ParseJsonPath("context.experiment.id"));
  EXPECT_EQ(p.keys(), (std::vector<std::string>{"context", "experiment", "id"}));
  EXPECT_EQ(p.pointer(), "/context/experiment/id");
  EXPECT_EQ(JsonPath("a/b.c~d").pointer(), "/a~1b/c~0d");
  EXPECT_STATUS(ParseJsonPath(""), kInvalidArgument);
  EXPECT_STATUS(ParseJsonPath("a..b"), kInvalidArgument);
  EXPECT_STATUS(ParseJsonPath(".a"), kInvalidArgument);
  EXPECT_STATUS(ParseJsonPath("a."), kInvalidArgument);
}

TEST(ExperimentTest, DefaultPaths) {
  auto paths = DefaultExperimentPaths();
  Experiment e = ExtractBoth(paths, R"({"context":{"experiment":{"id":"checkout_v2","variant":"B"}},
                                       "properties":{"experiment_id":"other","experiment_variant":"A"}})");
  EXPECT_EQ(e.experiment_id, "checkout_v2");
  EXPECT_EQ(e.experiment_variant, "B");
  e = ExtractBoth(paths, R"({"properties":{"experiment_id":"hero","experiment_variant":"control"}})");
  EXPECT_EQ(e.experiment_id, "hero");
  EXPECT_EQ(e.experiment_variant, "control");
  // Numbers count; the variant comes from the same pair and may be missing.
  e = ExtractBoth(paths, R"({"context":{"experiment":{"id":42}},"properties":{"experiment_variant":"A"}})");
  EXPECT_EQ(e.experiment_id, "42");
  EXPECT_EQ(e.experiment_variant, std::nullopt);
  // Not present: wrong types, empty strings, missing objects, non-object roots.
  for (const char* json : {R"({})", R"({"context":{"experiment":{"id":""}}})", R"({"context":"x"})",
                           R"({"context":{"experiment":{"id":{"x":1}}}})", R"({"context":{"experiment":{"id":1.5}}})",
                           R"({"context":{"experiment":{"id":true}}})", R"({"context":{"experiment":{"id":null}}})",
                           R"([1,2,3])", R"("string")", R"(7)"}) {
    EXPECT_EQ(ExtractBoth(paths, json), Experiment{}) << json;
  }
}

TEST(ExperimentTest, ConfiguredPaths) {
  ASSERT_OK_AND_ASSIGN(auto paths, ParseExperimentPaths({"traits.ab.name|traits.ab.arm", "properties.exp"}));
  ASSERT_EQ(paths.size(), 2u);
  Experiment e = ExtractBoth(paths, R"({"traits":{"ab":{"name":"n","arm":"t"}}})");
  EXPECT_EQ(e.experiment_id, "n");
  EXPECT_EQ(e.experiment_variant, "t");
  e = ExtractBoth(paths, R"({"properties":{"exp":"only-id"}})");
  EXPECT_EQ(e.experiment_id, "only-id");
  EXPECT_EQ(e.experiment_variant, std::nullopt);
  EXPECT_STATUS(ParseExperimentPaths({"a|"}), kInvalidArgument);
  EXPECT_STATUS(ParseExperimentPaths({"|b"}), kInvalidArgument);
}

TEST(FirstStringAtTest, FirstPresentWins) {
  std::vector<JsonPath> paths = {JsonPath("a.missing"), JsonPath("a.num"), JsonPath("a.str")};
  simdjson::dom::parser dom;
  auto root = ParseDom(dom, R"({"a":{"str":"s","num":18446744073709551615}})");
  EXPECT_EQ(FirstStringAt(paths, root), "18446744073709551615");
  std::vector<JsonPath> none = {JsonPath("x"), JsonPath("a.str.deeper")};
  EXPECT_EQ(FirstStringAt(none, root), std::nullopt);
  simdjson::ondemand::parser od;
  simdjson::padded_string padded(std::string(R"({"a":{"str":"s\u00e9"}})"));
  simdjson::ondemand::document doc;
  ASSERT_EQ(od.iterate(padded).get(doc), simdjson::SUCCESS);
  EXPECT_EQ(FirstStringAt(paths, doc), "s\xC3\xA9");
}

}  // namespace
}  // namespace clicklake::enrich
