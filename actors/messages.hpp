#pragma once

// The payloads that travel between HTTP sessions and actors. Free of CAF and
// Beast so both sides (and their tests) can include it cheaply.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/describe_job.hpp"
#include "core/post.hpp"
#include "core/rate_limiter.hpp"

namespace postd::actors {

// A validated POST /v1/post/create.
struct create_post {
  std::string author;
  std::string content;
  std::string idempotency_key;  // empty: none
  std::string traceparent = {}; // postd's span of the request (W3C)
  // The post's id when the API chose it (a create that waits for its row);
  // empty: the enqueue actor gives one.
  std::string post_id = {};
  // The attachments' URLs (a multipart create): the job's fileUrls.
  std::vector<std::string> file_urls = {};
};

enum class create_status {
  queued,
  duplicate,
  queue_full,
  unavailable,
  throttled,
  // Queued on the master, but fewer than ACK_REPLICAS replicas confirmed it
  // in time: not acknowledged (503 with the jobId).
  unconfirmed
};

struct create_outcome {
  create_status status = create_status::unavailable;
  std::string job_id;
  core::throttle_decision throttle;
};

using create_callback = std::function<void(create_outcome)>;
// No decision: the throttle actor is restarting (the caller answers 503).
using throttle_callback =
    std::function<void(std::optional<core::throttle_decision>)>;

// A create on its way: throttle actor -> enqueue actor -> Redis -> reply.
struct create_request {
  std::string throttle_key;
  create_post post;
  create_callback reply;
  core::throttle_decision throttle; // filled in by the throttle actor
};

// A rate-limit check for the other /v1 routes.
struct throttle_request {
  std::string key;
  throttle_callback reply;
};

// GET /v1/post/jobs/:jobId for one author: the answer is a core::job_lookup.
using core::job_lookup;

using job_callback = std::function<void(job_lookup)>;

struct job_query {
  std::string author;
  std::string job_id;
  job_callback reply;
};

// GET /v1/post/:id (one post) and GET /v1/post?authorId= (a page of an
// author's posts, newest first).
struct posts_page {
  enum class result { found, not_found, unavailable };
  result outcome = result::unavailable;
  std::vector<core::post> items;
};

using posts_callback = std::function<void(posts_page)>;

struct posts_query {
  std::string post_id;   // set: that one post
  std::string author_id; // otherwise: a page of this author's posts
  std::size_t limit = 20;
  std::optional<core::post> after; // the page starts below this
  posts_callback reply;
};

} // namespace postd::actors
