#pragma once

// Routing and request handling, free of Beast and CAF: a request comes in,
// a response goes out through `respond` (possibly later, from another
// thread). The actors are reached through the `backend` interface.

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "actors/health_board.hpp"
#include "actors/messages.hpp"
#include "core/fault.hpp"
#include "core/metrics.hpp"
#include "http/api_types.hpp"
#include "http/auth.hpp"
#include "http/routes.hpp"
#include "http/upload.hpp"

namespace postd::http {

class backend {
public:
  virtual ~backend() = default;
  // Throttle check, then (when allowed) the enqueue; `done` runs once.
  virtual void create(std::string throttle_key, actors::create_post post,
                      actors::create_callback done) = 0;
  // A create its request already counted toward the limit (a multipart
  // create is throttled before its body is read): the enqueue alone.
  virtual void enqueue(actors::create_post post,
                       core::throttle_decision throttle,
                       actors::create_callback done) = 0;
  // A throttle hit for any other throttled request.
  virtual void throttle(std::string key, actors::throttle_callback done) = 0;
  // The author's view of one job (off the I/O threads).
  virtual void find_job(std::string author, std::string job_id,
                        actors::job_callback done) = 0;
  // One post or a page of posts (off the I/O threads); `q.reply` runs once.
  virtual void find_posts(actors::posts_query q) = 0;
  virtual std::shared_ptr<const actors::health_view> health() const = 0;
  virtual actors::writer_pool_status writers() const = 0;
  // The root supervisor's children (restarts, escalation).
  virtual actors::supervisor_status services() const = 0;
  // Whether creates can wait for their rows here (Prefer: wait): only an
  // instance with writers hears of them.
  virtual bool can_wait() const { return false; }
  // Calls `done` once, when `post_id` is persisted (with the id of the row
  // that stands for it) or after `within` (nullopt). By default nothing can
  // be waited for: at once, nullopt.
  virtual void
  await_post(const std::string& post_id, std::chrono::milliseconds within,
             std::function<void(std::optional<std::string>)> done) {
    (void)post_id;
    (void)within;
    auto nothing = std::move(done);
    nothing(std::nullopt);
  }
  // Stops waiting for `post_id` (its create was not queued); `done` is
  // dropped uncalled.
  virtual void cancel_wait(const std::string& post_id) { (void)post_id; }
};

struct api_settings {
  std::string queue_name = "post-creation";
  std::size_t max_content_chars = 10000;
  bool trust_proxy = false;
  // ACK_REPLICAS: with it (or with replicas connected), /health and
  // /health/queue show the queue's replication.
  int ack_replicas = 0;
  // A monitor view older than this counts as down.
  std::chrono::milliseconds stale_after{3000};
  // The fault API's board and token (FAULTS=on); none: /admin is 404.
  std::shared_ptr<core::fault_board> faults{};
  std::string admin_token{};
  // Attachments: multipart creates store their files in `storage_dir`,
  // named in the job by `public_files_url` + the stored name, and served
  // back by GET /v1/files/:name.
  std::size_t max_files = 4;
  std::size_t max_file_bytes = std::size_t{5} << 20;
  std::filesystem::path storage_dir = "data/files";
  std::string public_files_url = "/v1/files/";
};

// A multipart create admitted (token checked, counted toward the limit and
// allowed) before its body is read.
struct upload_ticket {
  actors::create_post post; // author, Idempotency-Key, trace; no content
  core::throttle_decision throttle;
  std::optional<int> wait; // Prefer: wait=N, when it applies
  std::string throttle_key;
  respond_fn respond; // the request's answer (counted in the metrics)
};

class api {
public:
  // Labels the process's request metrics with the route table's templates.
  api(api_settings settings, token_verifier verifier, backend& backend);

  void handle(api_request req, respond_fn respond);

  // Whether a request's header makes it a create with a multipart/form-data
  // body, to be read as it arrives (begin_upload) rather than whole.
  static bool is_upload(std::string_view method, std::string_view target,
                        std::string_view content_type);
  // A multipart create whose header has arrived: checks what needs no body
  // (the token, the Idempotency-Key, the boundary, the throttle) and then
  // calls `admitted` (the body may be read) or answers through `respond`
  // (the body is not read: the connection closes after the answer).
  void begin_upload(api_request head,
                    std::function<void(upload_ticket)> admitted,
                    respond_fn respond);
  // The body of an admitted upload was read whole: validates the content
  // and enqueues the post with its files' URLs.
  void finish_upload(upload_ticket ticket, const create_form& form);
  // The body of an admitted upload was refused (413, 415, 400, ...).
  static void refuse_upload(const upload_ticket& ticket, api_response r);
  // What the reader of an upload's body needs.
  upload_limits limits_for_uploads() const;
  const std::filesystem::path& storage_dir() const {
    return settings_.storage_dir;
  }

  // From now on /health/ready answers 503 (SIGTERM: load balancers and
  // Kubernetes stop sending while in-flight requests finish).
  void start_draining() { draining_ = true; }

  // The client's address for rate limiting: the peer, or with TRUST_PROXY
  // the first X-Forwarded-For address.
  std::string client_ip(const api_request& req) const;

private:
  // `respond`, counted in the request metrics (and logged at debug) when it
  // answers.
  static respond_fn counted(const api_request& req, const route_match& route,
                            respond_fn respond);
  // A validated create: to the backend (waiting for its row when asked).
  // `counted`: the request was already counted toward the limit (an
  // upload, before its body), only the enqueue is left.
  void submit(std::string key, actors::create_post post,
              std::optional<int> wait, respond_fn respond,
              std::optional<core::throttle_decision> counted = std::nullopt);
  // The backend's part: throttled then queued, or only queued (`counted`).
  void queue(std::string key, actors::create_post post,
             std::optional<core::throttle_decision> counted,
             actors::create_callback done);
  // Answers a request for `route` (matched from `path`).
  void dispatch(route_match route, api_request req, const std::string& path,
                respond_fn respond);
  void create_post(api_request req, respond_fn respond);
  // Prefer: wait=N: answers 201 with the post once persisted within N
  // seconds, else as create_post would.
  // `counted`: as for submit.
  void create_and_wait(std::string key, actors::create_post post, int seconds,
                       respond_fn respond,
                       std::optional<core::throttle_decision> counted);
  struct create_wait;
  // Both events are in: answers (201 with the post when it was persisted
  // and is found, else the 202). Called with `lock` held; releases it.
  void finish_wait(const std::shared_ptr<create_wait>& w,
                   std::unique_lock<std::mutex>& lock);
  void job_status(const api_request& req, std::string job_id,
                  respond_fn respond);
  void get_post(const api_request& req, std::string id, respond_fn respond);
  void list_posts(const api_request& req, respond_fn respond);
  // Counts the request toward the limit; when refused answers 429, else
  // answers `error` with the rate-limit headers.
  void refuse(std::string key, api_response error, respond_fn respond);
  // /health (and /health/ready, which also fails while draining).
  void health(const respond_fn& respond, bool readiness) const;
  void health_queue(const respond_fn& respond) const;
  void metrics_text(const respond_fn& respond) const;

  api_settings settings_;
  token_verifier verifier_;
  backend& backend_;
  std::atomic<bool> draining_{false};
};

// Adds the X-RateLimit-* headers of an allowed request.
void add_rate_limit_headers(api_response& r, const core::throttle_decision& d);

// The 429 of @nestjs/throttler, with Retry-After.
api_response throttled_response(const core::throttle_decision& d);

// What a throttle verdict refuses at once: 503 with Retry-After while the
// throttle actor restarts (no verdict), the 429 over the limit; nothing when
// the request may go on.
std::optional<api_response>
refusal(const std::optional<core::throttle_decision>& verdict);

} // namespace postd::http
