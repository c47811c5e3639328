#pragma once

// Every route postd serves, in one table: the router matches requests
// against it, a known route asked with a method it does not serve answers
// 405 with the route's Allow, and /metrics counts requests under the route's
// template. Pure: no Beast, no CAF.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace postd::http {

enum class route_id : std::uint8_t {
  create,
  job_status,
  posts,
  post,
  health,
  health_queue,
  health_live,
  health_ready,
  metrics,
  admin_faults, // FAULTS=on only (404 otherwise)
  dashboard,
  file,  // GET /v1/files/:name (attachments)
  other, // no route: 404
};

struct route {
  route_id id;
  // Segments; one starting with ':' matches any one non-empty segment.
  std::string_view path;
  std::string_view allow; // the methods served, as Allow lists them
};

// Matched in this order: the first route that fits wins.
inline constexpr std::array<route, 12> routes{{
    {route_id::create, "/v1/post/create", "POST"},
    {route_id::job_status, "/v1/post/jobs/:jobId", "GET, HEAD"},
    {route_id::posts, "/v1/post", "GET, HEAD"},
    {route_id::post, "/v1/post/:id", "GET, HEAD"},
    {route_id::health, "/health", "GET, HEAD"},
    {route_id::health_queue, "/health/queue", "GET, HEAD"},
    {route_id::health_live, "/health/live", "GET, HEAD"},
    {route_id::health_ready, "/health/ready", "GET, HEAD"},
    {route_id::metrics, "/metrics", "GET, HEAD"},
    {route_id::admin_faults, "/admin/faults", "GET, HEAD, PUT, DELETE"},
    {route_id::dashboard, "/dashboard", "GET, HEAD"},
    {route_id::file, "/v1/files/:name", "GET, HEAD"},
}};

struct route_match {
  const route* matched = nullptr; // nullptr: no route (404)
  std::string param;              // the ':' segment's value, case kept

  route_id id() const { return matched ? matched->id : route_id::other; }
  // The route's place in `routes` (routes.size() for none): its metrics
  // index, without searching the table again.
  std::size_t index() const {
    return matched ? static_cast<std::size_t>(matched - routes.data())
                   : routes.size();
  }
  // Whether the route serves `method` (false when nothing matched).
  bool allows(std::string_view method) const;
};

// Matches a request path (no query) as Express routes under Nest, with
// neither `strict` nor `caseSensitive`: one trailing slash and the case of
// the letters do not matter (a parameter keeps its case).
route_match match_route(std::string_view path);

// The index /metrics counts a route under: its place in `routes`, or the
// last label ("other") for no route.
std::size_t metrics_index(route_id id);

// The labels of /metrics' series, by metrics_index: the templates, then
// "other".
std::vector<std::string> metrics_labels();

} // namespace postd::http
