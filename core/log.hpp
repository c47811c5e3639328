#pragma once

// Structured logs on stdout (LOG_FORMAT json: one object a line with time,
// level, msg and fields; text: a readable line). Backed by spdlog.

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace postd::log {

// Sets level ("trace".."off") and format ("json" or "text"); call once at
// start, before other threads log.
void init(const std::string& level, const std::string& format);

// Renders one event in the configured format.
std::string render(spdlog::level::level_enum lvl, std::string_view msg,
                   const nlohmann::json& fields);

inline bool enabled(spdlog::level::level_enum lvl) {
  return spdlog::should_log(lvl);
}

inline void event(spdlog::level::level_enum lvl, std::string_view msg,
                  const nlohmann::json& fields = nlohmann::json::object()) {
  if (enabled(lvl))
    spdlog::log(lvl, "{}", render(lvl, msg, fields));
}

inline void info(std::string_view msg,
                 const nlohmann::json& f = nlohmann::json::object()) {
  event(spdlog::level::info, msg, f);
}
inline void warn(std::string_view msg,
                 const nlohmann::json& f = nlohmann::json::object()) {
  event(spdlog::level::warn, msg, f);
}
inline void error(std::string_view msg,
                  const nlohmann::json& f = nlohmann::json::object()) {
  event(spdlog::level::err, msg, f);
}
inline void debug(std::string_view msg,
                  const nlohmann::json& f = nlohmann::json::object()) {
  event(spdlog::level::debug, msg, f);
}

} // namespace postd::log
