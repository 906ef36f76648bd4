# Third-party dependencies: Debian packages, plus DuckDB from .deps/ (filled by scripts/setup).

find_package(Threads REQUIRED)
find_package(GTest REQUIRED)
find_package(benchmark REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(ZLIB REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(TOMLPP REQUIRED IMPORTED_TARGET tomlplusplus)

set(CLICKLAKE_DEPS_DIR ${CMAKE_SOURCE_DIR}/.deps)
if(NOT EXISTS ${CLICKLAKE_DEPS_DIR}/duckdb/lib/libduckdb.so)
  message(FATAL_ERROR "DuckDB not found in ${CLICKLAKE_DEPS_DIR}: run scripts/setup first")
endif()
add_library(duckdb SHARED IMPORTED GLOBAL)
set_target_properties(duckdb PROPERTIES
  IMPORTED_LOCATION ${CLICKLAKE_DEPS_DIR}/duckdb/lib/libduckdb.so
  INTERFACE_SYSTEM_INCLUDE_DIRECTORIES ${CLICKLAKE_DEPS_DIR}/duckdb/include
  INTERFACE_INCLUDE_DIRECTORIES ${CLICKLAKE_DEPS_DIR}/duckdb/include)
set(CMAKE_BUILD_RPATH ${CLICKLAKE_DEPS_DIR}/duckdb/lib)
set(CMAKE_INSTALL_RPATH ${CLICKLAKE_DEPS_DIR}/duckdb/lib)

# shared/ sits beside the checkout (../shared) for sessions and CI.
get_filename_component(CLICKLAKE_SHARED_DIR ${CMAKE_SOURCE_DIR}/../shared ABSOLUTE)

find_package(simdjson REQUIRED)
