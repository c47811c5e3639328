#pragma once

// The HTTP front: a Beast listener and its sessions on HTTP_THREADS I/O
// threads. Beast stays behind this header.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "http/api.hpp"

namespace postd::http {

struct server_settings {
  std::string host = "0.0.0.0";
  std::uint16_t port = 3000;
  int threads = 1;
  std::size_t max_body_bytes = 65536;
  std::size_t max_header_bytes = 8192;
  // A whole request must arrive within this; also the keep-alive idle limit.
  std::chrono::milliseconds read_timeout{30000};
  // A dispatched request unanswered after this gets 503 "request timed out".
  std::chrono::milliseconds request_timeout{5000};
  // Open client connections; past it a new one is closed at once.
  int max_connections = 10000;
};

class server {
public:
  // Binds and listens; throws std::runtime_error with a clear message when
  // the address cannot be used.
  server(server_settings settings, api& api);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  std::uint16_t port() const; // the bound port (useful with port 0)

  void start(); // runs the I/O threads
  // Closes the listening socket and drains the open connections: idle ones
  // (no byte of a next request read) close now, the others after their
  // current answer (sent with `Connection: close`).
  void stop_accepting();
  // Waits until no request is in flight; false when `grace` passed first.
  bool wait_idle(std::chrono::milliseconds grace);
  // wait_idle(grace), then stops the I/O threads and joins them.
  void stop(std::chrono::milliseconds grace);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace postd::http
