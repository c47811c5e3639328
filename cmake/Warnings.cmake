# Project-wide warning flags, applied to our own targets only.
function(postd_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic
                                           -Wno-deprecated-declarations)
endfunction()
