#include "http/server.hpp"

#include <algorithm>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "http/session.hpp"

namespace postd::http {

struct server::impl {
  impl(server_settings s, api& a)
      : settings(std::move(s)), ioc(settings.threads),
        acceptor(net::make_strand(ioc)), api_(a) {}

  void listen() {
    beast::error_code ec;
    auto address = net::ip::make_address(settings.host, ec);
    if (ec)
      throw std::runtime_error("HOST: not an IP address (got '" +
                               settings.host + "')");
    net::ip::tcp::endpoint ep{address, settings.port};
    auto check = [&](const char* what) {
      if (ec)
        throw std::runtime_error(
            std::string("cannot ") + what + " " + settings.host + ":" +
            std::to_string(settings.port) + ": " + ec.message());
    };
    acceptor.open(ep.protocol(), ec);
    check("open");
    acceptor.set_option(net::socket_base::reuse_address(true), ec);
    check("configure");
    acceptor.bind(ep, ec);
    check("bind");
    acceptor.listen(net::socket_base::max_listen_connections, ec);
    check("listen on");
  }

  void do_accept() {
    acceptor.async_accept(
        net::make_strand(ioc),
        [this](beast::error_code ec, net::ip::tcp::socket socket) {
          if (ec == net::error::operation_aborted || !acceptor.is_open())
            return;
          if (ec && ec != net::error::connection_aborted)
            return accept_failed(ec);
          if (!ec)
            admit(std::move(socket));
          do_accept();
        });
  }

  // A connection over MAX_CONNECTIONS is closed at once (the socket goes
  // out of scope), counted, and warned about once per episode.
  void admit(net::ip::tcp::socket socket) {
    auto& m = metrics::process();
    if (m.connections_open.load(std::memory_order_relaxed) >=
        settings.max_connections) {
      m.connections_refused.fetch_add(1, std::memory_order_relaxed);
      if (!over_limit)
        log::warn("connection limit reached: closing new connections",
                  {{"max_connections", settings.max_connections}});
      over_limit = true;
      return;
    }
    if (over_limit)
      log::info("below the connection limit again");
    over_limit = false;
    beast::error_code ec;
    socket.set_option(net::ip::tcp::no_delay(true), ec);
    sessions.start(
        std::make_shared<session>(std::move(socket), api_, settings, sessions));
    if (accept_backoff.count() > 0) {
      log::info("accepting again", {{"failed_accepts", failed_accepts}});
      accept_backoff = {};
      failed_accepts = 0;
    }
  }

  // accept() failing (EMFILE, ENFILE, ENOBUFS, ...) would fail again at
  // once: wait 10 ms, doubling to 1 s while it lasts, one warning for it.
  void accept_failed(const beast::error_code& ec) {
    ++failed_accepts;
    if (accept_backoff.count() == 0) {
      log::warn("accept failing: backing off", {{"error", ec.message()}});
      accept_backoff = std::chrono::milliseconds{10};
    } else {
      accept_backoff = std::min(accept_backoff * 2, max_accept_backoff);
    }
    retry_timer.expires_after(accept_backoff);
    retry_timer.async_wait([this](beast::error_code timer_ec) {
      if (!timer_ec && acceptor.is_open())
        do_accept();
    });
  }

  static constexpr std::chrono::milliseconds max_accept_backoff{1000};

  server_settings settings;
  // Before the io_context: sessions that its destruction ends still
  // unregister.
  session_registry sessions;
  net::io_context ioc;
  net::ip::tcp::acceptor acceptor;
  api& api_;
  std::vector<std::thread> threads;
  // On the acceptor's strand only.
  net::steady_timer retry_timer{acceptor.get_executor()};
  std::chrono::milliseconds accept_backoff{0}; // 0: accepting normally
  long long failed_accepts = 0;
  bool over_limit = false;
};

server::server(server_settings settings, api& api)
    : impl_(std::make_unique<impl>(std::move(settings), api)) {
  impl_->listen();
}

server::~server() {
  if (!impl_->threads.empty())
    stop(std::chrono::milliseconds{0});
}

std::uint16_t server::port() const {
  beast::error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void server::start() {
  impl_->do_accept();
  for (int i = 0; i < impl_->settings.threads; ++i)
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
}

void server::stop_accepting() {
  net::post(impl_->acceptor.get_executor(), [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
    impl_->retry_timer.cancel();
    // After the close: no session starts that this would miss.
    impl_->sessions.drain_all();
  });
}

bool server::wait_idle(std::chrono::milliseconds grace) {
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (impl_->sessions.in_flight > 0) {
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  return true;
}

void server::stop(std::chrono::milliseconds grace) {
  wait_idle(grace);
  impl_->ioc.stop();
  for (auto& t : impl_->threads)
    if (t.joinable())
      t.join();
  impl_->threads.clear();
}

} // namespace postd::http
