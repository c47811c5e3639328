#include "core/log.hpp"

#include <atomic>
#include <chrono>

#include <spdlog/sinks/stdout_sinks.h>

#include "core/clock.hpp"

namespace postd::log {

namespace {

std::atomic<bool> json_format{true};

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
        {"time", core::iso_utc(std::chrono::system_clock::now())},
        {"level", std::string(level_name.data(), level_name.size())},
        {"msg", msg}};
    if (fields.is_object())
      for (const auto& [k, v] : fields.items())
        line[k] = v;
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string out = core::iso_utc(std::chrono::system_clock::now()) + " " +
                    std::string(level_name.data(), level_name.size()) + " " +
                    std::string(msg);
  if (fields.is_object())
    for (const auto& [k, v] : fields.items())
      out += " " + k + "=" +
             v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return out;
}

} // namespace postd::log
