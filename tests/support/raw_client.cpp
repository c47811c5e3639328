#include "support/raw_client.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <arpa/inet.h>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace postd::testing {

namespace {

namespace bhttp = boost::beast::http;

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

// fill() returns this when the deadline passed with nothing to read.
constexpr long timed_out = -1;

} // namespace

raw_client::raw_client(int port, std::chrono::milliseconds timeout)
    : timeout_(timeout) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0)
    throw std::runtime_error(errno_text("socket"));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) !=
      0) {
    auto why = errno_text("connect");
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error(why);
  }
  // Each send() is meant to be its own segment (slow and partial sends).
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

raw_client::~raw_client() {
  if (fd_ >= 0)
    ::close(fd_);
}

void raw_client::send(std::string_view bytes) {
  while (!bytes.empty()) {
    auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      throw std::runtime_error(errno_text("send"));
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

void raw_client::send_slowly(std::string_view bytes, std::size_t chunk,
                             std::chrono::milliseconds pause) {
  while (!bytes.empty()) {
    auto n = std::min(chunk, bytes.size());
    send(bytes.substr(0, n));
    bytes.remove_prefix(n);
    if (!bytes.empty())
      std::this_thread::sleep_for(pause);
  }
}

void raw_client::shutdown_send() {
  ::shutdown(fd_, SHUT_WR);
}

long raw_client::fill(std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return timed_out;
    pollfd p{fd_, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR)
      continue;
    if (ready < 0)
      throw std::runtime_error(errno_text("poll"));
    if (ready == 0)
      return timed_out;
    char chunk[65536];
    auto n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == ECONNRESET)
      return 0;
    if (n < 0)
      throw std::runtime_error(errno_text("recv"));
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return n;
  }
}

std::optional<http_result> raw_client::try_read_response() {
  bhttp::response_parser<bhttp::string_body> parser;
  parser.eager(true);
  parser.body_limit(std::uint64_t{64} << 20);
  auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (;;) {
    while (!buffer_.empty() && !parser.is_done()) {
      boost::beast::error_code ec;
      auto used = parser.put(boost::asio::buffer(buffer_), ec);
      buffer_.erase(0, used);
      if (ec == bhttp::error::need_more)
        break;
      if (ec)
        throw std::runtime_error("malformed response: " + ec.message());
      if (used == 0)
        break;
    }
    if (parser.is_done())
      break;
    auto got = fill(deadline);
    if (got == timed_out)
      throw std::runtime_error("no complete response within " +
                               std::to_string(timeout_.count()) + " ms");
    if (got == 0) {
      if (!parser.got_some() && buffer_.empty())
        return std::nullopt;
      throw std::runtime_error("connection ended in the middle of a response");
    }
  }
  auto res = parser.release();
  http_result out;
  out.status = res.result_int();
  out.body = std::move(res.body());
  for (const auto& field : res) {
    std::string name{field.name_string()};
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    out.headers[name] = std::string(field.value());
  }
  return out;
}

http_result raw_client::read_response() {
  auto r = try_read_response();
  if (!r)
    throw std::runtime_error("connection ended before a response");
  return std::move(*r);
}

bool raw_client::closed_by_peer(std::chrono::milliseconds within) {
  auto deadline = std::chrono::steady_clock::now() + within;
  auto before = buffer_.size();
  for (;;) {
    auto got = fill(deadline);
    if (got == timed_out)
      return false;
    if (got == 0)
      return buffer_.size() == before;
  }
}

std::string
raw_request(std::string_view method, std::string_view target,
            const std::vector<std::pair<std::string, std::string>>& headers,
            std::string_view body, std::optional<std::size_t> content_length) {
  std::string out;
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  out.append("Host: 127.0.0.1\r\n");
  for (const auto& [name, value] : headers)
    out.append(name).append(": ").append(value).append("\r\n");
  if (content_length)
    out.append("Content-Length: ")
        .append(std::to_string(*content_length))
        .append("\r\n");
  else if (!body.empty())
    out.append("Content-Length: ")
        .append(std::to_string(body.size()))
        .append("\r\n");
  out.append("\r\n").append(body);
  return out;
}

http_result raw_exchange(int port, std::string_view request,
                         std::chrono::milliseconds timeout) {
  raw_client c{port, timeout};
  c.send(request);
  return c.read_response();
}

} // namespace postd::testing
