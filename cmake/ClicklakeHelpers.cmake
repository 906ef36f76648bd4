# One small helper per kind of target, so the dependency graph reads at a glance.
#
#   clicklake_library(NAME SRCS a.cc b.cc DEPS other_lib ...)
#   clicklake_test(NAME SRCS a_test.cc DEPS lib ... [LABELS unit core] [TIMEOUT s])
#   clicklake_bench(NAME SRCS b.cc DEPS lib ...)
#
# Project code builds with warnings as errors; third-party headers are SYSTEM includes.

set(CLICKLAKE_WARNINGS -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers)

function(clicklake_library NAME)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_library(${NAME} STATIC ${ARG_SRCS})
  target_compile_options(${NAME} PRIVATE ${CLICKLAKE_WARNINGS})
  target_link_libraries(${NAME} PUBLIC ${ARG_DEPS})
endfunction()

function(clicklake_test NAME)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${NAME} ${ARG_SRCS})
  target_compile_options(${NAME} PRIVATE ${CLICKLAKE_WARNINGS})
  target_link_libraries(${NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_test(NAME ${NAME} COMMAND ${NAME})
  set_tests_properties(${NAME} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
    ENVIRONMENT "CLICKLAKE_SOURCE_DIR=${CMAKE_SOURCE_DIR};CLICKLAKE_SHARED_DIR=${CLICKLAKE_SHARED_DIR}")
endfunction()

function(clicklake_bench NAME)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${NAME} ${ARG_SRCS})
  target_compile_options(${NAME} PRIVATE ${CLICKLAKE_WARNINGS})
  target_link_libraries(${NAME} PRIVATE ${ARG_DEPS})
endfunction()
