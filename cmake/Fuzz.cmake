# POSTD_FUZZ=ON: the libFuzzer targets of tests/fuzz/. Included from the top
# CMakeLists.txt before the first library, so every postd target is compiled
# with coverage feedback, AddressSanitizer and UBSan; only the fuzz
# executables link libFuzzer itself (postd_fuzz_target below). The tests and
# postd build in the same tree (outside libFuzzer the coverage hooks only bump
# counters nobody reads, and call empty comparison hooks): deploy/test.sh runs
# its ASan suite and the fuzz targets from one tree (POSTD_SANITIZE=ON
# POSTD_FUZZ=ON) instead of compiling everything twice.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR
    "POSTD_FUZZ=ON needs Clang (libFuzzer), not ${CMAKE_CXX_COMPILER_ID}: "
    "configure a fresh build directory with CC=clang CXX=clang++")
endif()
if(POSTD_TSAN)
  message(FATAL_ERROR "POSTD_FUZZ=ON builds with ASan, which excludes POSTD_TSAN")
endif()

# -O1 whatever the build type (it comes after CMAKE_CXX_FLAGS_<CONFIG>); the
# debug information is the build type's (-g of RelWithDebInfo and Debug).
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined
                    -fno-sanitize-recover=undefined -fno-omit-frame-pointer
                    -O1)
# Executables that are not fuzz targets (postd itself, if built) still need
# the sanitizer runtimes.
add_link_options(-fsanitize=address,undefined)
# Read by app/: AddressSanitizer brings its own allocator, so no jemalloc.
set(POSTD_SANITIZE ON)

# A fuzz executable: `name`.cpp in tests/fuzz/, linked with libFuzzer's main
# and the postd libraries given after the name.
function(postd_fuzz_target name)
  add_executable(${name} ${name}.cpp)
  target_link_libraries(${name} PRIVATE ${ARGN})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  postd_warnings(${name})
endfunction()
