# POSTD_SANITIZE=ON builds everything with AddressSanitizer and UBSan.
option(POSTD_SANITIZE "Build with address and undefined-behaviour sanitizers" OFF)
if(POSTD_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
