#include "privacy/fuzz/fuzz_targets.h"

#include <cstdlib>
#include <string_view>

#include "privacy/privacy.h"

namespace clicklake::privacy::fuzz {

int FuzzRegulationBody(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto parsed = ParseRegulation(body);
  if (!parsed.ok()) return 0;
  if (parsed->empty() || parsed->size() > kMaxSubjectsPerRequest) std::abort();
  for (PrivacyRequest& r : *parsed) {
    if (r.subject.empty()) std::abort();
    r.id = "rq-fuzz";
    auto back = PrivacyRequest::FromJson(r.ToJson());
    if (!back.ok() || back->subject.All() != r.subject.All() || back->type != r.type || back->reason != r.reason) {
      std::abort();
    }
  }
  return 0;
}

int FuzzSubjectFilter(const uint8_t* data, size_t size) {
  static const SubjectFilter* filter = [] {
    PrivacyRequest r;
    r.id = "rq-fuzz";
    r.type = RegulationType::kSuppressWithDelete;
    r.received_at_us = 1714564800000000LL;
    r.subject.user_ids = {"u1"};
    r.subject.emails = {"ann@example.com"};
    SubjectList list;
    list.Apply(r, r.subject.All(), "k");
    return new SubjectFilter(std::move(list), "k");
  }();
  (void)filter->Drops(std::string_view(reinterpret_cast<const char*>(data), size), 1714564800000000LL);
  return 0;
}

}  // namespace clicklake::privacy::fuzz
