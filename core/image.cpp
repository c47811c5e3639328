#include "core/image.hpp"

#include <array>

namespace postd::core {

namespace {

constexpr std::array<image_type, 4> types{{{"jpg", "image/jpeg"},
                                           {"png", "image/png"},
                                           {"gif", "image/gif"},
                                           {"webp", "image/webp"}}};

bool starts(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

} // namespace

std::optional<image_type> sniff_image(std::string_view head) {
  using namespace std::string_view_literals;
  if (starts(head, "\xFF\xD8\xFF"sv))
    return types[0];
  if (starts(head, "\x89PNG\r\n\x1A\n"sv))
    return types[1];
  if (starts(head, "GIF87a"sv) || starts(head, "GIF89a"sv))
    return types[2];
  if (head.size() >= 12 && starts(head, "RIFF"sv) &&
      head.substr(8, 4) == "WEBP"sv)
    return types[3];
  return std::nullopt;
}

std::optional<image_type> image_type_of_extension(std::string_view ext) {
  for (const auto& t : types)
    if (t.extension == ext)
      return t;
  return std::nullopt;
}

} // namespace postd::core
