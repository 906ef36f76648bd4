// HTTP Basic credentials (RFC 7617) and the base64 they are written in.
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>

#include "governance/access/access.h"

namespace clicklake::access {

std::string Base64Decode(std::string_view s) {
  std::string out(3 * (s.size() / 4) + 3, '\0');
  const int len = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (len < 0) return "";
  size_t pad = 0;
  for (size_t i = s.size(); i > 0 && s[i - 1] == '='; i--) pad++;
  out.resize(static_cast<size_t>(len) - pad);
  return out;
}

Result<std::pair<std::string, std::string>> ParseBasicCredentials(std::string_view header) {
  static constexpr std::string_view kScheme = "basic ";
  if (header.size() < kScheme.size() ||
      !std::equal(kScheme.begin(), kScheme.end(), header.begin(),
                  [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); })) {
    return Status::InvalidArgument("not HTTP Basic credentials");
  }
  std::string_view encoded = header.substr(kScheme.size());
  while (!encoded.empty() && encoded.front() == ' ') encoded.remove_prefix(1);
  while (!encoded.empty() && encoded.back() == ' ') encoded.remove_suffix(1);
  if (encoded.empty() || encoded.size() % 4 != 0 || encoded.size() > 4096 ||
      encoded.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") !=
          std::string_view::npos ||
      (encoded.find('=') != std::string_view::npos &&
       (encoded.find('=') + 2 < encoded.size() ||
        encoded.find_first_not_of('=', encoded.find('=')) != std::string_view::npos))) {
    return Status::InvalidArgument("HTTP Basic credentials are not base64");
  }
  const std::string decoded = Base64Decode(encoded);
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("HTTP Basic credentials must be user:password");
  }
  for (unsigned char c : decoded)
    if (c < 0x20 || c == 0x7f) return Status::InvalidArgument("HTTP Basic credentials hold control characters");
  return std::make_pair(decoded.substr(0, colon), decoded.substr(colon + 1));
}

}  // namespace clicklake::access
