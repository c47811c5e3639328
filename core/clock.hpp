#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace postd::core {

// Milliseconds since the Unix epoch: Bull's timestamps.
inline std::int64_t epoch_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
      .count();
}

// "2026-11-29T05:27:03.123Z": how logs and the API write a moment.
std::string iso_utc(std::chrono::system_clock::time_point t);

} // namespace postd::core
