# Warnings and sanitizers for Keel's own targets (never forced on consumers).
add_library(keel_build_options INTERFACE)
target_compile_options(keel_build_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
  -Wnon-virtual-dtor -Wold-style-cast
  # -Wnull-dereference is left out: gcc 12 at -O2 reports it inside
  # libstdc++'s own string and streambuf code (false positives).
  # Option structs are meant to be filled by designated initializers that
  # name only what differs from the defaults ({.name = "io", .threads = 2});
  # -Wextra would flag every omitted field.
  -Wno-missing-field-initializers)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  # Checks KEEL_GUARDED_BY / KEEL_REQUIRES annotations (keel/core/thread_annotations.h).
  target_compile_options(keel_build_options INTERFACE -Wthread-safety)
endif()
if(KEEL_WERROR)
  target_compile_options(keel_build_options INTERFACE -Werror)
endif()

if(KEEL_SANITIZE STREQUAL "address")
  set(_keel_san -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
elseif(KEEL_SANITIZE STREQUAL "thread")
  set(_keel_san -fsanitize=thread -fno-omit-frame-pointer)
elseif(NOT KEEL_SANITIZE STREQUAL "")
  message(FATAL_ERROR "KEEL_SANITIZE must be '', 'address' or 'thread', not '${KEEL_SANITIZE}'")
endif()
if(_keel_san)
  # Applied globally so test, bench and app objects match the library's.
  add_compile_options(${_keel_san})
  add_link_options(${_keel_san})
endif()

if(KEEL_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "KEEL_FUZZ needs clang (libFuzzer)")
  endif()
  # Coverage instrumentation everywhere; fuzz targets link -fsanitize=fuzzer.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
