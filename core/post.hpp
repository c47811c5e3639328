#pragma once

// A post as the "Post" table holds it (SPEC §4).

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace postd::core {

struct new_post {
  std::string id;     // the post's primary key, given when it was queued
  std::string job_id; // Bull's job id: not unique (its counter can restart)
  std::string content;
  std::string author_id;
  std::vector<std::string> images;
  // The create's Idempotency-Key (empty: none) and when its job was queued
  // (the job's timestamp, ms since the epoch): the key is the post's for
  // 24 h from then, written with it (post_store_api::insert_posts).
  std::string idempotency_key;
  std::int64_t queued_at_ms = 0;
  // The create's W3C traceparent from the job's data (empty: none), for
  // the writer's log lines; not stored.
  std::string traceparent = {};
};

// What inserting a batch of new_posts did.
struct insert_outcome {
  std::size_t inserted = 0; // rows that were new
  // Rows left out because an earlier post of the author holds their
  // Idempotency-Key (a retry that Redis queued again, having lost the
  // key): row id -> the earlier post's id, which stands for them.
  std::map<std::string, std::string> earlier;
};

struct post {
  std::string id;
  std::string content;
  std::string author_id;
  std::string
      created_at;     // ISO-8601 UTC with milliseconds, e.g. ...T12:00:00.000Z
  std::string job_id; // empty when the row has none
  std::vector<std::string> images = {}; // the attachments' URLs
};

} // namespace postd::core
