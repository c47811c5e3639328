#pragma once

// Images recognised by their first bytes (their signatures), never by a
// declared type or a file name: JPEG, PNG, GIF and WebP.

#include <optional>
#include <string_view>

namespace postd::core {

struct image_type {
  std::string_view extension;    // "jpg", "png", "gif", "webp"
  std::string_view content_type; // "image/jpeg", ...
};

// How many first bytes sniff_image needs to decide.
inline constexpr std::size_t image_signature_bytes = 12;

// The image type of a file that starts with `head` (at least
// image_signature_bytes of it, or the whole file when shorter); nullopt
// when it is none of the four.
std::optional<image_type> sniff_image(std::string_view head);

// The type of a stored file's extension (as sniff_image named it).
std::optional<image_type> image_type_of_extension(std::string_view ext);

} // namespace postd::core
