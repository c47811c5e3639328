#include "http/api.hpp"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "core/ids.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/text.hpp"
#include "http/admin.hpp"
#include "http/dashboard.hpp"
#include "http/errors.hpp"
#include "http/files.hpp"
#include "http/multipart.hpp"
#include "http/prefer.hpp"
#include "http/query.hpp"
#include "http/validation.hpp"

namespace postd::http {

namespace {

using ojson = nlohmann::ordered_json;

std::string path_of(const std::string& target) {
  auto path = target.substr(0, target.find('?'));
  // absolute-form (RFC 9112 3.2.2): route on the path
  if (path.rfind("http://", 0) == 0 || path.rfind("https://", 0) == 0) {
    auto slash = path.find('/', path.find("://") + 3);
    path = slash == std::string::npos ? "/" : path.substr(slash);
  }
  return path;
}

api_response json_response(unsigned status, const ojson& body) {
  api_response r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

api_response no_cache(api_response r) {
  r.headers.emplace_back("Cache-Control",
                         "no-cache, no-store, must-revalidate");
  return r;
}

// A check is recent when it happened within stale_after (never: not).
bool recent(std::chrono::steady_clock::time_point at,
            std::chrono::milliseconds stale_after) {
  return at != std::chrono::steady_clock::time_point{} &&
         std::chrono::steady_clock::now() - at <= stale_after;
}

// The queue part of the view (counts, /health/queue) is recent.
bool fresh(const actors::health_view& v,
           std::chrono::milliseconds stale_after) {
  return recent(v.taken_at, stale_after);
}

// Bull ids are INCR counters; producers may also set their own. Anything
// else cannot name a job, and never reaches Redis or PostgreSQL.
bool plausible_job_id(const std::string& id) {
  return !id.empty() && id.size() <= 128 &&
         std::all_of(id.begin(), id.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' ||
                  c == '_' || c == '.';
         });
}

// The throttler's key, per route and client as @nestjs/throttler keys it:
// the route's (first) method and template, and the client's address.
std::string route_key(route_id id, const std::string& ip) {
  const auto& r = routes.at(metrics_index(id));
  return std::string(r.allow.substr(0, r.allow.find(','))) + " " +
         std::string(r.path) + "|" + ip;
}

// The queue's replication for /health and /health/queue.
bool shows_replication(const api_settings& settings,
                       const actors::health_view& view) {
  // Without either, the answers keep the old service's exact shape.
  return settings.ack_replicas > 0 || !view.replication.replicas.empty();
}

int replicas_online(const actors::health_view& view) {
  return static_cast<int>(std::count_if(
      view.replication.replicas.begin(), view.replication.replicas.end(),
      [](const auto& r) { return r.state == "online"; }));
}

ojson replication_json(const api_settings& settings,
                       const actors::health_view& view) {
  ojson replicas = ojson::array();
  for (const auto& r : view.replication.replicas) {
    replicas.push_back(ojson{{"address", r.address},
                             {"state", r.state},
                             {"lagBytes", r.lag_bytes},
                             {"lagSeconds", r.lag_seconds}});
  }
  return ojson{{"role", view.replication.role},
               {"replicasOnline", replicas_online(view)},
               {"ackReplicas", settings.ack_replicas},
               {"replicas", std::move(replicas)}};
}

} // namespace

void add_rate_limit_headers(api_response& r, const core::throttle_decision& d) {
  r.headers.emplace_back("X-RateLimit-Limit", std::to_string(d.limit));
  r.headers.emplace_back("X-RateLimit-Remaining", std::to_string(d.remaining));
  r.headers.emplace_back("X-RateLimit-Reset", std::to_string(d.reset_s));
}

api_response throttled_response(const core::throttle_decision& d) {
  auto r = bare_error_response(429, "ThrottlerException: Too Many Requests");
  r.headers.emplace_back("Retry-After", std::to_string(d.retry_after_s));
  return r;
}

std::optional<api_response>
refusal(const std::optional<core::throttle_decision>& verdict) {
  if (!verdict) {
    auto r = error_response(503, "Rate limiter restarting, try again later");
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }
  if (!verdict->allowed)
    return throttled_response(*verdict);
  return std::nullopt;
}

api::api(api_settings settings, token_verifier verifier, backend& backend)
    : settings_(std::move(settings)), verifier_(std::move(verifier)),
      backend_(backend) {
  metrics::process().label_routes(metrics_labels());
}

std::string api::client_ip(const api_request& req) const {
  if (settings_.trust_proxy && !req.forwarded_for.empty()) {
    auto first = req.forwarded_for.substr(0, req.forwarded_for.find(','));
    auto b = first.find_first_not_of(' ');
    auto e = first.find_last_not_of(' ');
    if (b != std::string::npos)
      return first.substr(b, e - b + 1);
  }
  return req.peer_ip;
}

namespace {

// Nest's 405 for a known route asked with a method it does not serve.
api_response method_not_allowed(const api_request& req, const std::string& path,
                                std::string allow) {
  auto r = error_response(405, "Cannot " + req.method + " " + path);
  r.headers.emplace_back("Allow", std::move(allow));
  return r;
}

// The old service's shape; a post with attachments also lists them.
ojson post_json(const core::post& p) {
  ojson body{{"id", p.id},
             {"content", p.content},
             {"authorId", p.author_id},
             {"createdAt", p.created_at}};
  if (!p.images.empty())
    body["images"] = p.images;
  return body;
}

// The 400 of a create whose Idempotency-Key is malformed, or nothing.
std::optional<api_response> bad_idempotency_key(const api_request& req) {
  if (!req.has_idempotency_key || valid_idempotency_key(req.idempotency_key))
    return std::nullopt;
  return error_response(
      400, std::vector<std::string>{
               "Idempotency-Key must be 1-255 printable ASCII characters"});
}

// The answer to a create, by what the enqueue did.
api_response create_answer(const actors::create_outcome& o) {
  using actors::create_status;
  switch (o.status) {
  case create_status::queued:
  case create_status::duplicate: {
    api_response r;
    r.status = 202;
    r.body = R"({"message":"Post creation queued successfully","jobId":)" +
             nlohmann::json(o.job_id).dump() + R"(,"status":"processing"})";
    r.headers.emplace_back("Location", "/v1/post/jobs/" + o.job_id);
    add_rate_limit_headers(r, o.throttle);
    return r;
  }
  case create_status::throttled:
    return throttled_response(o.throttle);
  case create_status::queue_full: {
    auto r = error_response(503, "Queue is full, try again later");
    r.headers.emplace_back("Retry-After", "5");
    return r;
  }
  case create_status::unconfirmed:
    return unconfirmed_response(o.job_id);
  case create_status::unavailable:
    break;
  }
  auto r = error_response(503, "Queue unavailable, try again later");
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

} // namespace

respond_fn api::counted(const api_request& req, const route_match& route,
                        respond_fn respond) {
  auto label = route.index();
  std::string_view route_path = route.matched ? route.matched->path : "other";
  return [respond = std::move(respond), label, route_path,
          method = metrics::method_of(req.method),
          started = std::chrono::steady_clock::now(),
          trace = req.traceparent](api_response r) {
    auto took = std::chrono::steady_clock::now() - started;
    metrics::process().request(label, method, r.status, took);
    // One line per request only at debug: at info, load writes no logs.
    if (log::enabled(spdlog::level::debug))
      log::debug("request",
                 {{"route", route_path},
                  {"status", r.status},
                  {"traceparent", trace},
                  {"latency_ms",
                   std::chrono::duration<double, std::milli>(took).count()}});
    respond(std::move(r));
  };
}

void api::handle(api_request req, respond_fn respond) {
  auto path = path_of(req.target);
  auto route = match_route(path);
  auto answer = counted(req, route, std::move(respond));
  dispatch(std::move(route), std::move(req), path, std::move(answer));
}

void api::dispatch(route_match route, api_request req, const std::string& path,
                   respond_fn respond) {
  if (route.id() == route_id::admin_faults && !settings_.faults)
    route = {}; // FAULTS off: as if there were no such route
  if (route.matched == nullptr)
    return respond(error_response(404, "Cannot " + req.method + " " + path));
  if (!route.allows(req.method))
    return respond(
        method_not_allowed(req, path, std::string(route.matched->allow)));
  using r = route_id;
  switch (route.id()) {
  case r::create:
    return create_post(std::move(req), std::move(respond));
  case r::job_status:
    return job_status(req, std::move(route.param), std::move(respond));
  case r::posts:
    return list_posts(req, std::move(respond));
  case r::post:
    return get_post(req, std::move(route.param), std::move(respond));
  case r::health:
  case r::health_ready:
    return health(respond, route.id() == r::health_ready);
  case r::health_queue:
    return health_queue(respond);
  case r::health_live: // the process answers: all liveness means
    return respond(no_cache(json_response(200, ojson{{"status", "ok"}})));
  case r::metrics:
    return metrics_text(respond);
  case r::admin_faults:
    return respond(admin_faults(req, *settings_.faults, settings_.admin_token));
  case r::dashboard:
    return respond(dashboard_response());
  case r::file:
    return respond(serve_file(
        settings_.storage_dir, route.param,
        file_request{req.method == "HEAD", req.if_none_match, req.range}));
  case r::other:
    break;
  }
}

void api::create_post(api_request req, respond_fn respond) {
  auto key = route_key(route_id::create, client_ip(req));
  // Guards run before validation, as in Nest: every request counts toward
  // the limit, and a throttled client sees 429 whatever it sent.
  auto refuse = [&](api_response error) {
    this->refuse(std::move(key), std::move(error), std::move(respond));
  };
  auto author = verifier_.author(req.authorization);
  if (!author)
    return refuse(bare_error_response(401, "Unauthorized"));
  if (!is_json_content_type(req.content_type))
    return refuse(error_response(415, "Content-Type must be application/json"));
  if (auto bad = bad_idempotency_key(req))
    return refuse(std::move(*bad));
  auto v = validate_create_body(req.body, settings_.max_content_chars);
  if (!v.body)
    return refuse(error_response(400, v.messages));
  actors::create_post post{std::move(*author), std::move(v.body->content),
                           std::move(req.idempotency_key),
                           std::move(req.traceparent)};
  submit(std::move(key), std::move(post), prefer_wait(req.prefer),
         std::move(respond));
}

void api::submit(std::string key, actors::create_post post,
                 std::optional<int> wait, respond_fn respond,
                 std::optional<core::throttle_decision> counted) {
  if (wait && backend_.can_wait())
    return create_and_wait(std::move(key), std::move(post), *wait,
                           std::move(respond), counted);
  queue(std::move(key), std::move(post), counted,
        [respond](const actors::create_outcome& o) {
          respond(create_answer(o));
        });
}

void api::queue(std::string key, actors::create_post post,
                std::optional<core::throttle_decision> counted,
                actors::create_callback done) {
  if (counted)
    return backend_.enqueue(std::move(post), *counted, std::move(done));
  backend_.create(std::move(key), std::move(post), std::move(done));
}

bool api::is_upload(std::string_view method, std::string_view target,
                    std::string_view content_type) {
  return method == "POST" &&
         core::istarts_with(content_type, "multipart/form-data") &&
         match_route(path_of(std::string(target))).id() == route_id::create;
}

void api::begin_upload(api_request head,
                       std::function<void(upload_ticket)> admitted,
                       respond_fn respond) {
  auto path = path_of(head.target);
  auto answer = counted(head, match_route(path), std::move(respond));
  auto key = route_key(route_id::create, client_ip(head));
  auto refuse = [&](api_response error) {
    this->refuse(std::move(key), std::move(error), std::move(answer));
  };
  // As for JSON: the guards first, then what the header alone can refuse.
  auto author = verifier_.author(head.authorization);
  if (!author)
    return refuse(bare_error_response(401, "Unauthorized"));
  if (settings_.max_files == 0)
    return refuse(error_response(415, "Content-Type must be application/json"));
  if (!multipart_boundary(head.content_type))
    return refuse(error_response(
        400, "multipart/form-data needs a boundary of 1 to 70 characters"));
  if (auto bad = bad_idempotency_key(head))
    return refuse(std::move(*bad));
  upload_ticket t;
  t.post = actors::create_post{std::move(*author),
                               {},
                               std::move(head.idempotency_key),
                               std::move(head.traceparent)};
  t.wait = prefer_wait(head.prefer);
  t.throttle_key = key;
  t.respond = std::move(answer);
  backend_.throttle(std::move(key),
                    [t = std::move(t), admitted = std::move(admitted)](
                        std::optional<core::throttle_decision> d) mutable {
                      if (auto no = refusal(d))
                        return t.respond(std::move(*no));
                      t.throttle = *d;
                      admitted(std::move(t));
                    });
}

void api::finish_upload(upload_ticket ticket, const create_form& form) {
  auto v = validate_content(form.content, settings_.max_content_chars);
  if (!v.body)
    return refuse_upload(ticket, error_response(400, v.messages));
  auto& post = ticket.post;
  post.content = std::move(v.body->content);
  for (const auto& name : form.stored)
    post.file_urls.push_back(settings_.public_files_url + name);
  submit({}, std::move(post), ticket.wait, std::move(ticket.respond),
         ticket.throttle);
}

void api::refuse_upload(const upload_ticket& ticket, api_response r) {
  add_rate_limit_headers(r, ticket.throttle);
  ticket.respond(std::move(r));
}

upload_limits api::limits_for_uploads() const {
  return {settings_.max_files, settings_.max_file_bytes,
          settings_.max_content_chars};
}

// A create that waits for its row: two events in either order (the
// enqueue's outcome, then the post persisted or the wait over; a fast writer
// can even come first), on any threads.
struct api::create_wait {
  std::mutex mtx;
  std::optional<actors::create_outcome> outcome;
  // Set once the wait ended: the row's id, or nullopt when it timed out.
  std::optional<std::optional<std::string>> persisted;
  bool answered = false;
  respond_fn respond;
  std::string applied; // Preference-Applied
};

void api::create_and_wait(std::string key, actors::create_post post,
                          int seconds, respond_fn respond,
                          std::optional<core::throttle_decision> counted) {
  // The post's id is chosen here, so the wait is registered before the job
  // can exist: a writer may persist it before the enqueue's answer is back.
  post.post_id = core::new_post_id();
  auto post_id = post.post_id;
  auto w = std::make_shared<create_wait>();
  w->respond = std::move(respond);
  w->applied = "wait=" + std::to_string(seconds);
  backend_.await_post(post_id, std::chrono::seconds{seconds},
                      [this, w](std::optional<std::string> row) {
                        std::unique_lock<std::mutex> lock{w->mtx};
                        w->persisted = std::move(row);
                        if (w->outcome && !w->answered)
                          finish_wait(w, lock);
                      });
  auto on_outcome = [this, w, post_id](const actors::create_outcome& o) {
    std::unique_lock<std::mutex> lock{w->mtx};
    w->outcome = o;
    if (o.status != actors::create_status::queued) {
      // Not queued (or a duplicate, whose post is an earlier
      // one's): nothing of ours will be persisted; answered as
      // without Prefer.
      w->answered = true;
      lock.unlock();
      backend_.cancel_wait(post_id);
      return w->respond(create_answer(o));
    }
    if (w->persisted && !w->answered)
      finish_wait(w, lock);
  };
  queue(std::move(key), std::move(post), counted, std::move(on_outcome));
}

void api::finish_wait(const std::shared_ptr<create_wait>& w,
                      std::unique_lock<std::mutex>& lock) {
  w->answered = true;
  auto accepted = create_answer(*w->outcome);
  accepted.headers.emplace_back("Preference-Applied", w->applied);
  auto row = *w->persisted;
  auto throttle = w->outcome->throttle;
  lock.unlock();
  if (!row) // not persisted in time: the usual 202
    return w->respond(std::move(accepted));
  actors::posts_query q;
  q.post_id = *row;
  q.reply = [w, accepted = std::move(accepted),
             throttle](actors::posts_page page) mutable {
    if (page.outcome != actors::posts_page::result::found || page.items.empty())
      return w->respond(std::move(accepted));
    const auto& p = page.items[0];
    auto body = post_json(p);
    body["images"] = p.images;
    api_response created = json_response(201, body);
    created.headers.emplace_back("Location", "/v1/post/" + p.id);
    created.headers.emplace_back("Preference-Applied", w->applied);
    add_rate_limit_headers(created, throttle);
    w->respond(std::move(created));
  };
  backend_.find_posts(std::move(q));
}

void api::refuse(std::string key, api_response error, respond_fn respond) {
  backend_.throttle(std::move(key),
                    [respond = std::move(respond), error = std::move(error)](
                        std::optional<core::throttle_decision> d) mutable {
                      if (auto no = refusal(d))
                        return respond(std::move(*no));
                      add_rate_limit_headers(error, *d);
                      respond(std::move(error));
                    });
}

void api::job_status(const api_request& req, std::string job_id,
                     respond_fn respond) {
  auto key = route_key(route_id::job_status, client_ip(req));
  auto author = verifier_.author(req.authorization);
  if (!author)
    return refuse(std::move(key), bare_error_response(401, "Unauthorized"),
                  std::move(respond));
  auto not_found = error_response(404, "Job " + job_id + " not found");
  if (!plausible_job_id(job_id))
    return refuse(std::move(key), std::move(not_found), std::move(respond));
  backend_.throttle(
      std::move(key),
      [this, author = std::move(*author), job_id = std::move(job_id),
       respond = std::move(respond), not_found = std::move(not_found)](
          std::optional<core::throttle_decision> verdict) mutable {
        if (auto no = refusal(verdict))
          return respond(std::move(*no));
        auto d = *verdict;
        backend_.find_job(
            std::move(author), job_id,
            [respond = std::move(respond), job_id, d,
             not_found = std::move(not_found)](actors::job_lookup j) mutable {
              api_response r;
              using result = actors::job_lookup::result;
              if (j.outcome == result::unavailable) {
                r = error_response(503, "Queue unavailable, try again later");
                r.headers.emplace_back("Retry-After", "1");
              } else if (j.outcome == result::not_found) {
                r = std::move(not_found);
              } else {
                ojson body{{"jobId", job_id},
                           {"status", j.status},
                           {"attemptsMade", j.attempts_made}};
                if (!j.post_id.empty())
                  body["postId"] = j.post_id;
                if (!j.failed_reason.empty())
                  body["failedReason"] = j.failed_reason;
                r = json_response(200, body);
              }
              add_rate_limit_headers(r, d);
              respond(std::move(r));
            });
      });
}

namespace {

api_response posts_unavailable() {
  auto r = error_response(503, "Database unavailable, try again later");
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

} // namespace

void api::get_post(const api_request& req, std::string id, respond_fn respond) {
  auto key = route_key(route_id::post, client_ip(req));
  auto not_found = error_response(404, "Post " + id + " not found");
  // Prisma's uuid(), and any id of the same alphabet, reach the database.
  if (!plausible_job_id(id))
    return refuse(std::move(key), std::move(not_found), std::move(respond));
  backend_.throttle(
      std::move(key),
      [this, id = std::move(id), respond = std::move(respond),
       not_found = std::move(not_found)](
          std::optional<core::throttle_decision> verdict) mutable {
        if (auto no = refusal(verdict))
          return respond(std::move(*no));
        auto d = *verdict;
        actors::posts_query q;
        q.post_id = std::move(id);
        q.reply = [respond = std::move(respond), d,
                   not_found = std::move(not_found)](actors::posts_page page) {
          using result = actors::posts_page::result;
          api_response r =
              page.outcome == result::unavailable ? posts_unavailable()
              : page.outcome == result::found && !page.items.empty()
                  ? json_response(200, post_json(page.items[0]))
                  : not_found;
          add_rate_limit_headers(r, d);
          respond(std::move(r));
        };
        backend_.find_posts(std::move(q));
      });
}

void api::list_posts(const api_request& req, respond_fn respond) {
  auto key = route_key(route_id::posts, client_ip(req));
  constexpr std::size_t max_limit = 100;
  actors::posts_query q;
  q.limit = 20;
  std::vector<std::string> problems;
  auto params = parse_query(req.target);
  if (!params) {
    problems.emplace_back("query string is malformed");
  } else {
    auto author = params->find("authorId");
    if (author == params->end() || author->second.empty())
      problems.emplace_back("authorId should not be empty");
    else
      q.author_id = author->second;
    if (auto limit = params->find("limit"); limit != params->end()) {
      const auto& v = limit->second;
      bool digits = !v.empty() && v.size() <= 3 &&
                    std::all_of(v.begin(), v.end(),
                                [](char c) { return c >= '0' && c <= '9'; });
      q.limit = digits ? std::stoul(v) : 0;
      if (q.limit < 1 || q.limit > max_limit)
        problems.emplace_back("limit must be an integer from 1 to 100");
    }
    if (auto cursor = params->find("cursor"); cursor != params->end()) {
      q.after = decode_cursor(cursor->second);
      if (!q.after)
        problems.emplace_back("cursor is not one this API handed out");
    }
  }
  if (!problems.empty())
    return refuse(std::move(key), error_response(400, problems),
                  std::move(respond));
  backend_.throttle(
      std::move(key),
      [this, q = std::move(q), respond = std::move(respond)](
          std::optional<core::throttle_decision> verdict) mutable {
        if (auto no = refusal(verdict))
          return respond(std::move(*no));
        auto d = *verdict;
        auto limit = q.limit;
        ++q.limit; // one more row tells whether a next page exists
        q.reply = [respond = std::move(respond), d,
                   limit](actors::posts_page page) {
          if (page.outcome == actors::posts_page::result::unavailable) {
            auto r = posts_unavailable();
            add_rate_limit_headers(r, d);
            return respond(std::move(r));
          }
          bool more = page.items.size() > limit;
          page.items.resize(std::min(page.items.size(), limit));
          ojson items = ojson::array();
          for (const auto& p : page.items)
            items.push_back(post_json(p));
          ojson next = more ? ojson(encode_cursor(page.items.back())) : ojson();
          auto r = json_response(
              200, ojson{{"items", std::move(items)}, {"nextCursor", next}});
          add_rate_limit_headers(r, d);
          respond(std::move(r));
        };
        backend_.find_posts(std::move(q));
      });
}

void api::health(const respond_fn& respond, bool readiness) const {
  auto view = backend_.health();
  ojson info = ojson::object();
  ojson error = ojson::object();
  ojson details = ojson::object();
  auto report = [&](const std::string& name, const actors::dependency_status& s,
                    std::chrono::steady_clock::time_point checked_at,
                    ojson up_fields) {
    bool live = recent(checked_at, settings_.stale_after);
    ojson entry;
    if (s.up && live) {
      entry = {{"status", "up"}};
      for (const auto& [k, v] : up_fields.items())
        entry[k] = v;
      info[name] = entry;
    } else {
      entry = {
          {"status", "down"},
          {"message", live ? s.message
                      : checked_at == std::chrono::steady_clock::time_point{}
                          ? "not checked yet"
                          : "no recent check (the check hangs)"}};
      error[name] = entry;
    }
    details[name] = entry;
  };
  report("database", view->database, view->database_at, ojson::object());
  ojson queue_fields{{"active", view->counts.active},
                     {"waiting", view->counts.waiting}};
  if (shows_replication(settings_, *view))
    queue_fields["replication"] = replication_json(settings_, *view);
  report("queue:" + settings_.queue_name, view->queue, view->taken_at,
         std::move(queue_fields));
  // Writers only show when their supervisor escalated (they keep crashing):
  // a healthy answer keeps the old service's exact shape.
  if (auto w = backend_.writers(); w.escalated) {
    ojson entry = {{"status", "down"},
                   {"message", "writers keep crashing (" +
                                   std::to_string(w.restarts) + " restarts; " +
                                   std::to_string(w.running) + " of " +
                                   std::to_string(w.writers) + " running)"}};
    error["writers"] = entry;
    details["writers"] = entry;
  }
  // Likewise the other actors, under the root supervisor.
  if (auto root = backend_.services(); root.escalated) {
    std::string down;
    for (const auto& child : root.children)
      if (!child.running)
        down += (down.empty() ? "; restarting: " : ", ") + child.name;
    ojson entry = {{"status", "down"},
                   {"message", "actors keep crashing (" +
                                   std::to_string(root.restarts) + " restarts" +
                                   down + ")"}};
    error["actors"] = entry;
    details["actors"] = entry;
  }
  if (readiness && draining_) {
    ojson entry = {{"status", "down"}, {"message", "shutting down"}};
    error["postd"] = entry;
    details["postd"] = entry;
  }
  bool ok = error.empty();
  auto r = json_response(ok ? 200 : 503, ojson{{"status", ok ? "ok" : "error"},
                                               {"info", info},
                                               {"error", error},
                                               {"details", details}});
  respond(no_cache(std::move(r)));
}

void api::metrics_text(const respond_fn& respond) const {
  auto view = backend_.health();
  auto writers = backend_.writers();
  metrics::registry::snapshot s;
  s.queue_known = view->queue.up && fresh(*view, settings_.stale_after);
  s.redis_up = s.queue_known;
  s.database_up =
      view->database.up && recent(view->database_at, settings_.stale_after);
  s.redis_latency_ms = view->queue.latency_ms;
  s.database_latency_ms = view->database.latency_ms;
  s.waiting = view->counts.waiting;
  s.active = view->counts.active;
  s.completed = view->counts.completed;
  s.failed = view->counts.failed;
  s.delayed = view->counts.delayed;
  s.writer_restarts = writers.restarts;
  s.writers_running = writers.running;
  s.writers_configured = writers.writers;
  s.redis_replicas_online = replicas_online(*view);
  s.redis_ack_replicas = settings_.ack_replicas;
  for (const auto& child : backend_.services().children)
    s.actors.push_back({child.name, child.running, child.restarts});
  if (settings_.faults)
    for (const auto& spec : core::fault_specs)
      s.faults.push_back(
          {std::string(spec.name), settings_.faults->value(spec.id) != 0});
  api_response r;
  r.status = 200;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = metrics::process().render(s);
  respond(no_cache(std::move(r)));
}

void api::health_queue(const respond_fn& respond) const {
  auto view = backend_.health();
  if (!view->queue.up || !fresh(*view, settings_.stale_after))
    return respond(no_cache(error_response(
        503, "queue unavailable: " + (view->queue.message.empty()
                                          ? std::string{"stale"}
                                          : view->queue.message))));
  const auto& c = view->counts;
  ojson body{{"queue", settings_.queue_name},
             {"waiting", c.waiting},
             {"active", c.active},
             {"completed", c.completed},
             {"failed", c.failed},
             {"delayed", c.delayed},
             {"total", c.waiting + c.active + c.delayed}};
  if (shows_replication(settings_, *view))
    body["replication"] = replication_json(settings_, *view);
  respond(no_cache(json_response(200, body)));
}

} // namespace postd::http
