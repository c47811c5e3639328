#pragma once

// A raw TCP client for what an ordinary HTTP client cannot do: pipelining,
// partial and slow sends, oversized headers, garbage bytes, several
// responses read off one connection. Every read has a deadline, so a server
// that stalls fails the test instead of hanging it.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/server_process.hpp"

namespace postd::testing {

class raw_client {
public:
  // Connects to 127.0.0.1:port; throws std::runtime_error when it cannot.
  explicit raw_client(int port, std::chrono::milliseconds timeout =
                                    std::chrono::milliseconds{5000});
  ~raw_client();
  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;

  // Writes all of `bytes` (one write call when the kernel takes it whole).
  void send(std::string_view bytes);
  // Writes `bytes` in pieces of `chunk` bytes with `pause` between them.
  void send_slowly(std::string_view bytes, std::size_t chunk,
                   std::chrono::milliseconds pause);
  // Half-closes the sending side (the server then sees end of stream).
  void shutdown_send();

  // The next response on this connection (bytes left over from a previous
  // read are kept, so pipelined responses come out one by one). Throws
  // std::runtime_error on timeout, on a malformed response, or when the
  // connection ends first.
  http_result read_response();
  // Like read_response(), but nullopt when the connection ends (EOF or
  // reset) before a response starts.
  std::optional<http_result> try_read_response();

  // True when the server ends the connection (EOF or reset) within
  // `within` and sends nothing more before that.
  bool closed_by_peer(std::chrono::milliseconds within);

private:
  // Reads more bytes into buffer_: how many, 0 on EOF or reset, -1 when
  // the deadline passed first.
  long fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  std::string buffer_;
};

// The text of an HTTP/1.1 request: request line, Host, `headers` in order,
// Content-Length when there is a body (or `content_length` when set, to lie
// about it), then the body.
std::string raw_request(
    std::string_view method, std::string_view target,
    const std::vector<std::pair<std::string, std::string>>& headers = {},
    std::string_view body = {},
    std::optional<std::size_t> content_length = std::nullopt);

// One request on a fresh raw connection; the response (or throws).
http_result raw_exchange(
    int port, std::string_view request,
    std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});

} // namespace postd::testing
