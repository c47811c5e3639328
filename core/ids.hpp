#pragma once

// Identifiers postd makes: a post's id (its primary key in "Post", given when
// the post is queued, so a job written twice is still one row) and the
// random tokens of locks and migration records. Boost.Uuid underneath.

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace postd::core {

// A time-ordered UUID version 7 (RFC 9562): 48 bits of Unix milliseconds,
// then 74 random bits. Ids made later sort later, so the primary-key index
// grows at its right edge.
std::string new_post_id();

// The id of a post queued by an old Node producer, whose job carries no
// "postId": a name-based UUID version 5 (RFC 4122, SHA-1) in postd's own
// namespace of "<queue base><job id>@<job timestamp ms>", e.g.
// "bull:post-creation:17@1764321000123". The same job always gets the same
// id (retries, stalled recovery, two writers); Bull's job ids start over when
// Redis loses its state, but a job id and its creation millisecond together
// do not repeat, so a new job never takes an old post's id.
std::string legacy_post_id(std::string_view queue_base, std::string_view job_id,
                           std::int64_t timestamp_ms);

// The id of the post a Bull job carries: its data's "postId" (postd's own
// jobs), else legacy_post_id of the job (old producers' jobs). `data` is the
// job's parsed data.
std::string post_id_of_job(const nlohmann::json& data,
                           std::string_view queue_base, std::string_view job_id,
                           std::int64_t timestamp_ms);

// The namespace of legacy_post_id, for tests and other implementations.
inline constexpr std::string_view legacy_post_namespace =
    "798ee318-d2d8-414b-a41c-a2222ebc8a60";

// A random UUID version 4: lock tokens, migration record ids (Prisma's form).
std::string random_uuid();

} // namespace postd::core
