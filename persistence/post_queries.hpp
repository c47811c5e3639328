#pragma once

// The author-page queries of post_store, in a header so the EXPLAIN test
// checks the very statements the adapter runs (keyset pagination on
// "Post_authorId_createdAt_idx").

namespace postd::persistence::sql {

// Both pages walk "Post_authorId_createdAt_idx" backwards; id breaks ties of
// equal "createdAt" (a batch shares one now()). A timestamp input ignores the
// trailing 'Z', so the created_at string we hand out is accepted back.
inline constexpr const char* first_page = R"sql(
SELECT "id", "content", "authorId",
       to_char("createdAt", 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), "jobId"
FROM "Post"
WHERE "authorId" = $1
ORDER BY "createdAt" DESC, "id" DESC
LIMIT $2)sql";

inline constexpr const char* next_page = R"sql(
SELECT "id", "content", "authorId",
       to_char("createdAt", 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), "jobId"
FROM "Post"
WHERE "authorId" = $1 AND ("createdAt", "id") < ($2::timestamp(3), $3)
ORDER BY "createdAt" DESC, "id" DESC
LIMIT $4)sql";

} // namespace postd::persistence::sql
