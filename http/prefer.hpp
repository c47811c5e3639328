#pragma once

// RFC 7240 `Prefer` as POST /v1/post/create honours it: `wait=N` asks for
// the answer once the post is persisted, if that takes at most N seconds.

#include <optional>
#include <string_view>

namespace postd::http {

// The longest wait postd grants: a larger N is honoured as this.
inline constexpr int max_prefer_wait_seconds = 10;

// The seconds `wait` asks for in a Prefer field value (several preferences,
// comma-separated, each `token [= value] *(; parameter)`; tokens without
// regard to case, a value possibly quoted), capped at
// max_prefer_wait_seconds; nullopt when there is no usable `wait` (absent,
// 0, not a number): a preference not understood is ignored (RFC 7240 §2).
std::optional<int> prefer_wait(std::string_view prefer);

} // namespace postd::http
