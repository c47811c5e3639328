#pragma once

// Bytes as lower-case hexadecimal and back: digests (Redis script SHA1s,
// migration checksums, rate-limit keys) and opaque cursors.

#include <optional>
#include <string>
#include <string_view>

namespace postd::core {

// Two lower-case hex digits per byte.
std::string to_hex(std::string_view bytes);

// The bytes of `hex` (either case); nullopt for an odd length or a character
// that is not a hex digit.
std::optional<std::string> from_hex(std::string_view hex);

} // namespace postd::core
