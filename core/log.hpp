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

// log::info("msg", {{"field", value}}) and so on: one callable a level.
struct level_logger {
  spdlog::level::level_enum level;
  void
  operator()(std::string_view msg,
             const nlohmann::json& fields = nlohmann::json::object()) const {
    event(level, msg, fields);
  }
};

inline constexpr level_logger debug{spdlog::level::debug};
inline constexpr level_logger info{spdlog::level::info};
inline constexpr level_logger warn{spdlog::level::warn};
inline constexpr level_logger error{spdlog::level::err};

} // namespace postd::log
