// Raw bytes from a client, as http/session.cpp reads them: Beast's request
// parser with the server's header and body limits, a fresh parser per
// request of a keep-alive connection; each whole request goes through
// postd's API (fake backend, known JWT secret). Every dispatched request
// must get exactly one answer, a status of 200..599, a JSON body that parses
// when it says JSON, and headers that cannot split the response.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

#include <boost/beast/http.hpp>

#include "api_invariants.hpp"
#include "check.hpp"
#include "fake_backend.hpp"
#include "http/api.hpp"
#include "http/server.hpp"
#include "http/wire.hpp"

namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using namespace postd;

// The secret of the tokens in corpus/fuzz_http_request and http.dict.
constexpr const char* secret = "fuzz-secret";

struct harness {
  fuzz::fake_backend backend;
  http::api plain{http::api_settings{}, http::token_verifier{secret}, backend};
  // Behind a proxy, with short posts: the other branches.
  http::api proxied{http::api_settings{"q", 16, true},
                    http::token_verifier{secret}, backend};
};

harness& the_harness() {
  static harness h;
  return h;
}

// session::send's response (http/wire.hpp), serialised as it would go on
// the wire.
void serialise(http::api_response r, unsigned version, bool head) {
  auto res = http::to_beast_response(std::move(r), version, false, head);
  bhttp::serializer<false, bhttp::string_body> sr{res};
  beast::error_code ec;
  while (!sr.is_done() && !ec)
    sr.next(ec, [&](beast::error_code&, const auto& buffers) {
      sr.consume(beast::buffer_bytes(buffers));
    });
  FUZZ_CHECK(!ec);
}

void answer(http::api& api, bhttp::request<bhttp::string_body>& req) {
  // session::on_header: a Transfer-Encoding other than chunked is refused
  // before the API sees the request (400, or 501 for a coding under it).
  if (req.find(bhttp::field::transfer_encoding) != req.end() && !req.chunked())
    return;
  if (!http::only_chunked_coding(req))
    return;
  bool head = req.method() == bhttp::verb::head;
  unsigned version = req.version();
  int answers = 0;
  api.handle(http::to_api_request(std::move(req), "10.1.2.3"),
             [&](http::api_response r) {
               ++answers;
               fuzz::check_response(r);
               serialise(r, version, head);
             });
  // The fake backend answers at once: the answer came before handle returned.
  FUZZ_CHECK(answers == 1);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  auto& h = the_harness();
  std::string_view in(reinterpret_cast<const char*>(data), size);
  h.backend.reset(std::hash<std::string_view>{}(in));
  auto& api = (size % 2 == 0) ? h.plain : h.proxied;
  const http::server_settings limits;
  // Requests of one connection, each with a fresh parser (session::do_read).
  for (int n = 0; n < 8 && !in.empty(); ++n) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(limits.max_body_bytes);
    parser.eager(true);
    beast::error_code ec;
    while (!parser.is_done() && !in.empty()) {
      auto used = parser.put(net::buffer(in.data(), in.size()), ec);
      in.remove_prefix(used);
      if (ec || used == 0)
        break;
    }
    if (!parser.is_done() && (!ec || ec == bhttp::error::need_more))
      parser.put_eof(ec); // the client closed the connection
    if (ec || !parser.is_done())
      return 0; // session.cpp answers 400/413/431 or closes
    auto req = parser.release();
    bool keep_alive = req.keep_alive();
    answer(api, req);
    if (!keep_alive)
      break;
  }
  return 0;
}
