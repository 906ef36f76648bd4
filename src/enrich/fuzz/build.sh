#!/usr/bin/env bash
# Builds the enrichment libFuzzer targets with clang (not part of the CMake build).
#
#   src/enrich/fuzz/build.sh [OUT_DIR]        # default: build-fuzz/enrich
#   OUT_DIR/url_fuzzer -max_total_time=60 OUT_DIR/corpus/url src/enrich/fuzz/seeds/url
#   OUT_DIR/ua_fuzzer  -max_total_time=60 OUT_DIR/corpus/ua  src/enrich/fuzz/seeds/ua
#
# Both run with ASan + UBSan. The UA fuzzer loads .deps/npm/uap-core/regexes.yaml
# (scripts/setup), or $CLICKLAKE_UA_REGEXES.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="${1:-$root/build-fuzz/enrich}"
mkdir -p "$out/obj" "$out/corpus/url" "$out/corpus/ua"

CXX="${CXX:-clang++}"
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined
       -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
       -I"$root/src" -DCLICKLAKE_DEPS_DIR="\"$root/.deps\"")
# Third-party headers as system includes (their warnings are not ours).
flags+=($(pkg-config --cflags re2 libmaxminddb tomlplusplus | sed 's/-I/-isystem /g'))
flags+=(-DSPDLOG_COMPILED_LIB -DSPDLOG_FMT_EXTERNAL -DSPDLOG_SHARED_LIB -DFMT_SHARED)

compile() {  # src → obj
  local src="$1" obj="$out/obj/$(echo "$1" | tr '/' '_').o"
  "$CXX" "${flags[@]}" -c "$root/$src" -o "$obj"
  echo "$obj"
}

common_objs=()
for src in src/enrich/campaign.cc src/enrich/text_util.cc src/enrich/fuzz/fuzz_entry.cc \
           src/enrich/parse_ua_tool.cc src/enrich/user_agent.cc src/common/status.cc src/common/config.cc; do
  common_objs+=("$(compile "$src")")
done
libs=($(pkg-config --libs re2) -lyaml-cpp -lspdlog -lfmt -ltomlplusplus -lcrypto -lpthread)

for target in url_fuzzer ua_fuzzer; do
  obj="$(compile "src/enrich/fuzz/$target.cc")"
  "$CXX" -fsanitize=fuzzer,address,undefined "$obj" "${common_objs[@]}" "${libs[@]}" -o "$out/$target"
  echo "built $out/$target"
done
