#include "pipeline/gold/models.h"

namespace clicklake::pipeline::gold {

std::string ModelText(std::string_view name) {
  for (const auto& m : EmbeddedModels()) {
    if (name != m.name) continue;
    std::string text = m.sql;
    while (!text.empty() && (isspace(static_cast<unsigned char>(text.back())) || text.back() == ';')) text.pop_back();
    return text;
  }
  return "";
}

}  // namespace clicklake::pipeline::gold
