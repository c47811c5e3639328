#pragma once

// GET /dashboard: the operators' live page (http/dashboard/dashboard.html,
// embedded in the binary at build time). It polls /health, /health/queue and
// /metrics once a second; those answer from the monitors' cached views, so an
// open dashboard costs Redis and PostgreSQL nothing.

#include <string_view>

#include "http/api_types.hpp"

namespace postd::http {

// The page's bytes, as in the source tree when postd was built.
std::string_view dashboard_page();

// 200 text/html with the page, never cached by a browser across builds,
// and a Content-Security-Policy that lets it fetch only its own origin:
// inline CSS and JS, no external scripts, fonts, images or frames.
api_response dashboard_response();

} // namespace postd::http
