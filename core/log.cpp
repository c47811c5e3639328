#include "core/log.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <ctime>

#include <spdlog/sinks/stdout_sinks.h>

namespace postd::log {

namespace {

std::atomic<bool> json_format{true};

std::string utc_now_iso() {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto secs = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::array<char, 32> buf{};
  std::size_t n =
      std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf.data() + n, buf.size() - n, ".%03dZ", static_cast<int>(ms));
  return buf.data();
}

} // namespace

void init(const std::string& level, const std::string& format) {
  json_format = format != "text";
  auto logger = spdlog::stdout_logger_mt("postd");
  logger->set_pattern("%v"); // render() formats the whole line
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::info);
}

std::string render(spdlog::level::level_enum lvl, std::string_view msg,
                   const nlohmann::json& fields) {
  auto level_name = spdlog::level::to_string_view(lvl);
  if (json_format) {
    nlohmann::ordered_json line = {
        {"time", utc_now_iso()},
        {"level", std::string(level_name.data(), level_name.size())},
        {"msg", msg}};
    if (fields.is_object())
      for (const auto& [k, v] : fields.items())
        line[k] = v;
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string out = utc_now_iso() + " " +
                    std::string(level_name.data(), level_name.size()) + " " +
                    std::string(msg);
  if (fields.is_object())
    for (const auto& [k, v] : fields.items())
      out += " " + k + "=" +
             v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return out;
}

} // namespace postd::log
