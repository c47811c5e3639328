# POSTD_FUZZ=ON: the libFuzzer targets of tests/fuzz/. Included from the top
# CMakeLists.txt before the first library, so every postd target is compiled
# with coverage feedback, AddressSanitizer and UBSan; only the fuzz
# executables link libFuzzer itself (postd_fuzz_target below).
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR
    "POSTD_FUZZ=ON needs Clang (libFuzzer), not ${CMAKE_CXX_COMPILER_ID}: "
    "configure a fresh build directory with CC=clang CXX=clang++")
endif()

add_compile_options(-fsanitize=fuzzer-no-link,address,undefined
                    -fno-sanitize-recover=undefined -fno-omit-frame-pointer
                    -g -O1)
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
