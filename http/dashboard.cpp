#include "http/dashboard.hpp"

#include <string>

namespace postd::http {

api_response dashboard_response() {
  api_response r;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::string(dashboard_page());
  r.headers = {
      {"Cache-Control", "no-cache"},
      {"X-Content-Type-Options", "nosniff"},
      {"Content-Security-Policy",
       "default-src 'none'; connect-src 'self'; script-src 'unsafe-inline'; "
       "style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'"},
  };
  return r;
}

} // namespace postd::http
