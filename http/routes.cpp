#include "http/routes.hpp"

#include "core/text.hpp"

namespace postd::http {

namespace {

// The next '/'-separated segment of `rest` (which starts after a '/').
std::string_view next_segment(std::string_view& rest) {
  auto end = rest.find('/');
  auto segment = rest.substr(0, end);
  rest =
      end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
  return segment;
}

// Whether `path` fits `pattern`; the parameter segment's value in `param`.
bool fits(std::string_view pattern, std::string_view path, std::string& param) {
  if (pattern.empty() || path.empty() || path.front() != '/')
    return false;
  pattern.remove_prefix(1);
  path.remove_prefix(1);
  bool more = true;
  while (more) {
    more = pattern.find('/') != std::string_view::npos;
    if (more != (path.find('/') != std::string_view::npos))
      return false; // not as many segments
    auto want = next_segment(pattern);
    auto got = next_segment(path);
    if (!want.empty() && want.front() == ':') {
      if (got.empty())
        return false;
      param = got;
    } else if (!core::iequals(want, got)) {
      return false;
    }
  }
  return true;
}

} // namespace

bool route_match::allows(std::string_view method) const {
  if (matched == nullptr)
    return false;
  std::string_view allow = matched->allow;
  while (!allow.empty()) {
    auto end = allow.find(',');
    if (allow.substr(0, end) == method)
      return true;
    allow = end == std::string_view::npos ? std::string_view{}
                                          : allow.substr(end + 2); // ", "
  }
  return false;
}

route_match match_route(std::string_view path) {
  if (path.size() > 1 && path.back() == '/')
    path.remove_suffix(1);
  route_match m;
  for (const auto& r : routes) {
    std::string param;
    if (fits(r.path, path, param)) {
      m.matched = &r;
      m.param = std::move(param);
      break;
    }
  }
  return m;
}

std::size_t metrics_index(route_id id) {
  for (std::size_t i = 0; i < routes.size(); ++i)
    if (routes[i].id == id)
      return i;
  return routes.size();
}

std::vector<std::string> metrics_labels() {
  std::vector<std::string> out;
  out.reserve(routes.size() + 1);
  for (const auto& r : routes)
    out.emplace_back(r.path);
  out.emplace_back("other");
  return out;
}

} // namespace postd::http
