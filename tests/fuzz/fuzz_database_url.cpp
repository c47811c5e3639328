// DATABASE_URL and the other settings (app/config.hpp). The input's first
// line is DATABASE_URL; each further line is one more setting: its first
// byte picks the setting (or fault knob), the rest is the value, up to any
// NUL (values come from the environment or argv: C strings). Only
// app::config_error may come out, and a URL that parses keeps its base and
// loses exactly the Prisma-only parameters.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "app/config.hpp"
#include "check.hpp"

namespace {

using namespace postd::app;

void check_url(const std::string& url) {
  database_target t;
  try {
    t = parse_database_url(url);
  } catch (const config_error&) {
    return;
  }
  auto q = url.find('?');
  FUZZ_CHECK(t.url.substr(0, t.url.find('?')) == url.substr(0, q));
  FUZZ_CHECK(t.schema != "public");
  FUZZ_CHECK(t.schema.find('\0') == std::string::npos);
  if (q == std::string::npos) {
    FUZZ_CHECK(t.url == url && t.schema.empty());
    return;
  }
  // Every parameter kept is one of the URL's and not Prisma's.
  std::string_view kept(t.url);
  kept.remove_prefix(std::min(kept.size(), kept.find('?')));
  while (!kept.empty()) {
    kept.remove_prefix(1); // '?' or '&'
    auto param = kept.substr(0, kept.find('&'));
    auto name = param.substr(0, param.find('='));
    FUZZ_CHECK(!param.empty());
    FUZZ_CHECK(name != "schema" && name != "pgbouncer" &&
               name != "connection_limit" && name != "pool_timeout" &&
               name != "socket_timeout" && name != "statement_cache_size");
    kept.remove_prefix(param.size());
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto line = [&] {
    auto nl = in.find('\n');
    auto l = in.substr(0, nl);
    in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
    return std::string(l);
  };
  auto c_string = [](const std::string& s) {
    return s.substr(0, s.find('\0'));
  };
  std::map<std::string, std::string> values;
  values["DATABASE_URL"] = c_string(line());
  check_url(values["DATABASE_URL"]);
  const auto& settings = postd::app::settings();
  const auto& knobs = postd::app::fault_knobs();
  for (int n = 0; n < 16 && !in.empty(); ++n) {
    auto l = line();
    if (l.empty())
      continue;
    auto pick =
        static_cast<unsigned char>(l[0]) % (settings.size() + knobs.size());
    const auto& s =
        pick < settings.size() ? settings[pick] : knobs[pick - settings.size()];
    values[s.name] = c_string(l.substr(1));
    FUZZ_CHECK(flag_name(s.name).starts_with("--"));
  }
  try {
    auto c = parse_config(values);
    FUZZ_CHECK(c.database_url ==
               parse_database_url(values["DATABASE_URL"]).url);
    require(c, true, true);
  } catch (const config_error& e) {
    FUZZ_CHECK(e.what()[0] != '\0');
  }
  return 0;
}
