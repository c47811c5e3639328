# Project-wide warning flags, applied to our own targets only (third-party
# headers come in through imported targets, as system headers).
# POSTD_WERROR=ON (CI, deploy/test.sh) makes every warning an error.
option(POSTD_WERROR "Treat warnings as errors" OFF)

function(postd_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  # Clang's own check for reserved names (__x, _X, user literals without
  # '_'), at no cost: .clang-tidy leaves bugprone-reserved-identifier out.
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    target_compile_options(${target} PRIVATE -Wreserved-identifier)
  endif()
  if(POSTD_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
