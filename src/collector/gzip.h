// Gzip/deflate request bodies (Content-Encoding: gzip | deflate), via zlib.
//
// Decompression is bounded: a body that inflates past `max_output` bytes is
// refused (ResourceExhausted) without inflating the rest, so a small
// "gzip bomb" costs no more than max_output of memory.
// Thread safety: stateless free function.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace clicklake::collector {

// Inflates a gzip (or, with `zlib_format`, a zlib/deflate) stream into *out.
// InvalidArgument for corrupt or truncated input; ResourceExhausted past max_output.
Status Inflate(std::string_view in, size_t max_output, bool zlib_format, std::string* out);

}  // namespace clicklake::collector
