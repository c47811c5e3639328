// The ceiling of HTTP on this machine: a minimal Beast server that answers
// every request with postd's 202 body, and does nothing else. bench/run.sh
// measures postd against it in the same run.
//
//   ceiling_server PORT [THREADS]

#include <cstdlib>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr const char* accepted_body =
    R"({"message":"Post creation queued successfully","jobId":"12345","status":"processing"})";

class session : public std::enable_shared_from_this<session> {
public:
  explicit session(tcp::socket&& s) : stream_(std::move(s)) {}
  void run() {
    net::dispatch(
        stream_.get_executor(),
        beast::bind_front_handler(&session::do_read, shared_from_this()));
  }

private:
  void do_read() {
    req_ = {};
    stream_.expires_after(std::chrono::seconds(30));
    bhttp::async_read(
        stream_, buffer_, req_,
        beast::bind_front_handler(&session::on_read, shared_from_this()));
  }
  void on_read(beast::error_code ec, std::size_t) {
    if (ec)
      return close();
    res_ = {bhttp::status::accepted, req_.version()};
    res_.set(bhttp::field::content_type, "application/json; charset=utf-8");
    res_.set(bhttp::field::location, "/v1/post/jobs/12345");
    res_.keep_alive(req_.keep_alive());
    res_.body() = accepted_body;
    res_.prepare_payload();
    bhttp::async_write(
        stream_, res_,
        beast::bind_front_handler(&session::on_write, shared_from_this()));
  }
  void on_write(beast::error_code ec, std::size_t) {
    if (ec || !res_.keep_alive())
      return close();
    do_read();
  }
  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  bhttp::request<bhttp::string_body> req_;
  bhttp::response<bhttp::string_body> res_;
};

void accept(tcp::acceptor& acceptor, net::io_context& ioc) {
  acceptor.async_accept(net::make_strand(ioc),
                        [&](beast::error_code ec, tcp::socket s) {
                          if (!ec) {
                            s.set_option(tcp::no_delay(true), ec);
                            std::make_shared<session>(std::move(s))->run();
                          }
                          accept(acceptor, ioc);
                        });
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: ceiling_server PORT [THREADS]\n";
    return 2;
  }
  auto port = static_cast<unsigned short>(std::atoi(argv[1]));
  int threads = argc > 2 ? std::max(1, std::atoi(argv[2])) : 2;
  net::io_context ioc{threads};
  tcp::acceptor acceptor{net::make_strand(ioc),
                         {net::ip::make_address("127.0.0.1"), port}};
  accept(acceptor, ioc);
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i)
    pool.emplace_back([&] { ioc.run(); });
  ioc.run();
}
