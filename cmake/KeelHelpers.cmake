# keel_add_layer(NAME <layer> [SOURCES ...] DEPS ... [PRIVATE_DEPS ...])
#   One layer folder = one library target keel_<layer>, alias keel::<layer>.
#   A layer without SOURCES is header-only (templates): an INTERFACE library
#   with the same name, include path, features and DEPS; it has nothing of
#   its own to compile, so PRIVATE_DEPS are refused. Its headers are compiled
#   with the warning flags by their tests, which include each header first.
function(keel_add_layer)
  cmake_parse_arguments(A "" "NAME" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(target keel_${A_NAME})
  if(A_SOURCES)
    set(scope PUBLIC)
    add_library(${target} ${A_SOURCES})
    target_link_libraries(${target} PUBLIC ${A_DEPS} PRIVATE ${A_PRIVATE_DEPS} $<BUILD_INTERFACE:keel_build_options>)
    set_target_properties(${target} PROPERTIES OUTPUT_NAME keel_${A_NAME})
  else()
    if(A_PRIVATE_DEPS)
      message(FATAL_ERROR "keel_add_layer(${A_NAME}): a header-only layer has no PRIVATE_DEPS")
    endif()
    set(scope INTERFACE)
    add_library(${target} INTERFACE)
    target_link_libraries(${target} INTERFACE ${A_DEPS})
  endif()
  add_library(keel::${A_NAME} ALIAS ${target})
  target_include_directories(${target} ${scope}
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
    $<INSTALL_INTERFACE:include>)
  target_compile_features(${target} ${scope} cxx_std_20)
  if(KEEL_CHECKED)
    target_compile_definitions(${target} ${scope} KEEL_CHECKED=1)
  endif()
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${A_NAME})
  set_property(GLOBAL APPEND PROPERTY KEEL_LAYER_TARGETS ${target})
endfunction()

# keel_add_tests(TARGET <exe> LABEL unit|stress|integration SOURCES ... LIBS ... [TIMEOUT s])
#   Builds one GoogleTest executable and registers every TEST in it with CTest,
#   labelled, each with a timeout. No test exists that CTest does not run.
function(keel_add_tests)
  if(NOT KEEL_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(A "" "TARGET;LABEL;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 60)
  endif()
  add_executable(${A_TARGET} ${A_SOURCES})
  target_link_libraries(${A_TARGET} PRIVATE ${A_LIBS} GTest::gtest GTest::gmock GTest::gtest_main keel_build_options)
  gtest_discover_tests(${A_TARGET}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS ${A_LABEL} TIMEOUT ${A_TIMEOUT})
endfunction()

# keel_add_bench(TARGET <exe> SOURCES ... LIBS ...): a Google Benchmark program.
function(keel_add_bench)
  if(NOT KEEL_BUILD_BENCH)
    return()
  endif()
  cmake_parse_arguments(A "" "TARGET" "SOURCES;LIBS" ${ARGN})
  add_executable(${A_TARGET} ${A_SOURCES})
  target_link_libraries(${A_TARGET} PRIVATE ${A_LIBS} benchmark::benchmark keel_build_options)
endfunction()
