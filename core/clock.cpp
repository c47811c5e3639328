#include "core/clock.hpp"

#include <array>
#include <cstdio>
#include <ctime>

namespace postd::core {

std::string iso_utc(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  auto secs = system_clock::to_time_t(t);
  auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::array<char, 32> buf{};
  std::size_t n =
      std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf.data() + n, buf.size() - n, ".%03dZ", static_cast<int>(ms));
  return buf.data();
}

} // namespace postd::core
