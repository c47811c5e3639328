# Sanitizer trees (deploy/test.sh builds one of each, with Clang):
#   POSTD_SANITIZE=ON  AddressSanitizer and UBSan (with POSTD_FUZZ=ON as well,
#                      the same tree builds the libFuzzer targets)
#   POSTD_TSAN=ON      ThreadSanitizer
# ASan and TSan cannot share a process (each brings its own runtime and
# shadow memory), hence the two trees.
option(POSTD_SANITIZE "Build with address and undefined-behaviour sanitizers" OFF)
option(POSTD_TSAN "Build with the thread sanitizer" OFF)
if(POSTD_SANITIZE AND POSTD_TSAN)
  message(FATAL_ERROR "POSTD_SANITIZE and POSTD_TSAN exclude each other: configure a tree for each")
endif()

if(POSTD_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

if(POSTD_TSAN)
  # -O1 whatever the build type (it comes after CMAKE_CXX_FLAGS_<CONFIG>):
  # TSan instruments every memory access, and unoptimised code makes far more
  # of them (Clang's TSan documentation asks for -O1 or higher). At -O1 the
  # TSan run of unit+actors+integration+persistence took ~300 s, against
  # ~230 s for the Release run of everything.
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -O1)
  add_link_options(-fsanitize=thread)
  # Read by app/: the sanitizer runtime intercepts malloc itself, so no
  # jemalloc (as for ASan).
  set(POSTD_SANITIZE ON)
endif()
