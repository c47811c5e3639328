// postd-chaos-load: the chaos kit's load (bench/chaos.sh runs it). Open
// loop: post i is due at t0 + i/rate whatever the server does, and its due
// time is what the record keeps as sent_ms, so a stalled server shows as
// latency rather than as fewer sends (no coordinated omission). Every send
// is one line of requests.csv; a post not acknowledged is sent again with
// the same Idempotency-Key, as a careful client does.
//
//   postd-chaos-load --port P [--host 127.0.0.1] --secret S --rate N
//                    --duration S --prefix P --t0 EPOCH_MS --out FILE
//                    [--connections 64] [--timeout-ms 5000] [--settle 60]
//
// One thread, one io_context: a timer releases the sends as they fall due,
// each goes out on an idle keep-alive connection, or on a new one while
// fewer than --connections are open, or waits in a queue (its latency then
// grows, as it would for a real client).

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <deque>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <jwt/jwt.hpp>
#include <nlohmann/json.hpp>
#include <sys/socket.h>

#include "record.hpp"

namespace postd::chaos {
namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

constexpr double first_pause_ms = 200;
constexpr double max_pause_ms = 2000;
// postd closes a keep-alive connection idle for HTTP_READ_TIMEOUT_MS (30 s
// by default): one idle for longer than this is not reused.
constexpr auto max_idle = std::chrono::seconds{20};

struct options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string secret;
  double rate = 0;
  double duration_s = 0;
  std::string prefix;
  long long t0_epoch_ms = 0;
  std::string out;
  int connections = 64;
  int timeout_ms = 5000;
  double settle_s = 60;
};

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

double number_arg(const std::string& name, const std::string& value, double low,
                  double high) {
  try {
    std::size_t used = 0;
    double v = std::stod(value, &used);
    if (used == value.size() && v >= low && v <= high)
      return v;
  } catch (const std::exception&) {
  }
  std::ostringstream msg;
  msg << name << " must be a number from " << low << " to " << high << " (got '"
      << value << "')";
  throw usage_error(msg.str());
}

// The prefix goes into JSON, a header and the CSV record unescaped.
bool plain_prefix(const std::string& p) {
  if (p.empty() || p.size() > 200)
    return false;
  return std::ranges::all_of(p, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' ||
           c == '_' || c == '.' || c == ':';
  });
}

options parse_options(int argc, char** argv) {
  options o;
  std::map<std::string, std::string> given;
  for (int i = 1; i < argc; i += 2) {
    std::string name = argv[i];
    if (name.rfind("--", 0) != 0 || i + 1 >= argc)
      throw usage_error("expected --name value pairs, got '" + name + "'");
    given[name.substr(2)] = argv[i + 1];
  }
  auto take = [&](const char* name, bool required) -> std::string {
    auto it = given.find(name);
    if (it == given.end()) {
      if (required)
        throw usage_error(std::string("--") + name + " is required");
      return {};
    }
    std::string v = it->second;
    given.erase(it);
    return v;
  };
  o.port = static_cast<int>(number_arg("--port", take("port", true), 1, 65535));
  if (auto h = take("host", false); !h.empty())
    o.host = h;
  o.secret = take("secret", true);
  o.rate = number_arg("--rate", take("rate", true), 1, 100000);
  o.duration_s = number_arg("--duration", take("duration", true), 0.001, 3600);
  o.prefix = take("prefix", true);
  if (!plain_prefix(o.prefix))
    throw usage_error("--prefix must be 1-200 of [A-Za-z0-9._:-]");
  o.t0_epoch_ms =
      static_cast<long long>(number_arg("--t0", take("t0", true), 0, 1e14));
  o.out = take("out", true);
  if (auto v = take("connections", false); !v.empty())
    o.connections = static_cast<int>(number_arg("--connections", v, 1, 10000));
  if (auto v = take("timeout-ms", false); !v.empty())
    o.timeout_ms = static_cast<int>(number_arg("--timeout-ms", v, 1, 600000));
  if (auto v = take("settle", false); !v.empty())
    o.settle_s = number_arg("--settle", v, 0, 3600);
  if (!given.empty())
    throw usage_error("unknown option --" + given.begin()->first);
  return o;
}

// A token postd's token_verifier accepts (http/auth.hpp): HS256, `sub`,
// `exp` well past the run.
std::string make_token(const std::string& key, std::chrono::seconds ttl) {
  using namespace jwt::params;
  auto now = std::chrono::system_clock::now();
  jwt::jwt_object obj{algorithm("HS256"), secret(key),
                      payload({{"sub", "chaos-load"}})};
  obj.add_claim("iat", now).add_claim("exp", now + ttl);
  return obj.signature();
}

// A field of the record may hold no comma, quote or line break.
std::string plain(std::string s) {
  for (char& c : s)
    if (c == ',' || c == '"' || c == '\r' || c == '\n' || c == ' ')
      c = '-';
  return s;
}

// Why a send got no answer, in a word for the record.
std::string error_name(beast::error_code ec) {
  if (ec == beast::error::timeout)
    return "timeout";
  if (ec == net::error::connection_refused)
    return "refused";
  if (ec == net::error::connection_reset)
    return "reset";
  if (ec == bhttp::error::end_of_stream || ec == net::error::eof)
    return "closed";
  if (ec == net::error::broken_pipe)
    return "broken-pipe";
  return plain(ec.message());
}

// The jobId of a JSON answer ({"jobId": "..."}), empty when it has none.
std::string job_id_of(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object())
    return {};
  auto it = j.find("jobId");
  if (it == j.end())
    return {};
  return plain(it->is_string() ? it->get<std::string>() : it->dump());
}

// Retry-After in milliseconds when it is a number of seconds, else -1.
double retry_after_ms(const bhttp::response<bhttp::string_body>& res) {
  auto it = res.find(bhttp::field::retry_after);
  if (it == res.end())
    return -1;
  std::string v{it->value()};
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos ||
      v.size() > 6)
    return -1;
  return std::stod(v) * 1000;
}

bool retried(int status) {
  return status == 429 || status >= 500;
}

// A send waiting for its turn: which post, which send of it (1 = first),
// and when it was due (ms since t0).
struct send_item {
  std::uint64_t post = 0;
  int number = 1;
  double due_ms = 0;
};

struct later_first {
  bool operator()(const send_item& a, const send_item& b) const {
    return a.due_ms > b.due_ms;
  }
};

class load;

// One keep-alive connection carrying one send at a time. A connection
// error ends it (the load opens a new one for the next send).
class connection : public std::enable_shared_from_this<connection> {
public:
  connection(net::io_context& io, load& owner) : stream_(io), owner_(owner) {}

  void start(send_item item); // connect, then send
  void send(send_item item);  // on an idle, connected one
  bool reusable();            // idle, not closed by the server
  const send_item& item() const { return item_; }

private:
  void on_connect(beast::error_code ec);
  void write();
  void on_write(beast::error_code ec, std::size_t bytes);
  void on_read(beast::error_code ec, std::size_t bytes);
  void fail(beast::error_code ec);

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  bhttp::request<bhttp::string_body> req_;
  bhttp::response<bhttp::string_body> res_;
  send_item item_;
  steady::time_point idle_since_;
  load& owner_;
};

class load {
public:
  load(net::io_context& io, const options& o, std::ostream& out)
      : io_(io), o_(o), out_(out), timer_(io), flush_timer_(io),
        signals_(io, SIGINT, SIGTERM), rng_(std::random_device{}()) {
    auto now_sys = std::chrono::system_clock::now().time_since_epoch();
    auto now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now_sys).count();
    t0_ = steady::now() + std::chrono::milliseconds{o.t0_epoch_ms - now_ms};
    total_ = static_cast<std::uint64_t>(std::ceil(o.duration_s * o.rate));
    end_ms_ = (o.duration_s + o.settle_s) * 1000;
    endpoint_ =
        *tcp::resolver{io}.resolve(o.host, std::to_string(o.port)).begin();
    token_ = make_token(o.secret, std::chrono::seconds{static_cast<long>(
                                      o.duration_s + o.settle_s + 3600)});
    host_ = o.host + ":" + std::to_string(o.port);
  }

  void run();
  std::string summary() const;
  std::string errors() const; // why sends got no answer, how often

  // From the connections.
  const tcp::endpoint& endpoint() const { return endpoint_; }
  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds{o_.timeout_ms};
  }
  void prepare(bhttp::request<bhttp::string_body>& req,
               const send_item& item) const;
  void answered(const send_item& item,
                const bhttp::response<bhttp::string_body>& res);
  void failed(const send_item& item, const std::string& error);
  void idle(std::shared_ptr<connection> c);
  void closed(const std::shared_ptr<connection>& c);

private:
  double now_ms() const {
    return std::chrono::duration<double, std::milli>(steady::now() - t0_)
        .count();
  }
  double post_due_ms(std::uint64_t i) const {
    return static_cast<double>(i) * 1000 / o_.rate;
  }
  void tick();
  void arm();
  void dispatch();
  std::shared_ptr<connection> take_idle();
  void retry(const send_item& item, double retry_after);
  void record(const send_item& item, double answered_ms, int status,
              const std::string& job_id, const std::string& error);
  void maybe_done();
  void finish(const char* why);
  void on_flush_timer();

  net::io_context& io_;
  const options& o_;
  std::ostream& out_;
  net::steady_timer timer_;
  net::steady_timer flush_timer_;
  net::signal_set signals_;
  std::mt19937 rng_;
  steady::time_point t0_;
  tcp::endpoint endpoint_;
  std::string token_;
  std::string host_;
  std::uint64_t total_ = 0; // posts due in the run
  std::uint64_t next_post_ = 0;
  double end_ms_ = 0; // no send is due after it (the settle ends)
  bool armed_ = false;
  double armed_due_ = 0;
  bool finished_ = false;
  std::deque<send_item> ready_; // due, waiting for a connection
  std::priority_queue<send_item, std::vector<send_item>, later_first> retries_;
  std::vector<std::shared_ptr<connection>> idle_; // most recently used last
  std::unordered_set<std::shared_ptr<connection>> busy_;
  std::size_t open_ = 0;
  std::uint64_t acknowledged_ = 0;
  std::uint64_t sends_ = 0;
  std::map<int, std::uint64_t> statuses_;
  std::map<std::string, std::uint64_t> errors_;
  int progress_ticks_ = 0;
};

void connection::start(send_item item) {
  item_ = item;
  stream_.expires_after(owner_.timeout()); // one deadline per send
  stream_.async_connect(
      owner_.endpoint(),
      beast::bind_front_handler(&connection::on_connect, shared_from_this()));
}

void connection::on_connect(beast::error_code ec) {
  if (ec)
    return fail(ec);
  beast::error_code ignored;
  stream_.socket().set_option(tcp::no_delay{true}, ignored);
  write();
}

void connection::send(send_item item) {
  item_ = item;
  stream_.expires_after(owner_.timeout());
  write();
}

void connection::write() {
  owner_.prepare(req_, item_);
  bhttp::async_write(
      stream_, req_,
      beast::bind_front_handler(&connection::on_write, shared_from_this()));
}

void connection::on_write(beast::error_code ec, std::size_t /*bytes*/) {
  if (ec)
    return fail(ec);
  res_ = {};
  bhttp::async_read(
      stream_, buffer_, res_,
      beast::bind_front_handler(&connection::on_read, shared_from_this()));
}

void connection::on_read(beast::error_code ec, std::size_t /*bytes*/) {
  if (ec)
    return fail(ec);
  owner_.answered(item_, res_);
  if (!res_.keep_alive()) {
    stream_.socket().close(ec);
    return owner_.closed(shared_from_this());
  }
  idle_since_ = steady::now();
  owner_.idle(shared_from_this());
}

void connection::fail(beast::error_code ec) {
  owner_.failed(item_, error_name(ec));
  stream_.socket().close(ec);
  owner_.closed(shared_from_this());
}

// A connection the server closed while it sat idle would fail the next
// send for a reason that is no fault of the run: peek before reusing it.
bool connection::reusable() {
  if (steady::now() - idle_since_ > max_idle)
    return false;
  char byte = 0;
  auto fd = stream_.socket().native_handle();
  auto n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void load::prepare(bhttp::request<bhttp::string_body>& req,
                   const send_item& item) const {
  std::string content = o_.prefix + "-" + std::to_string(item.post);
  req = {bhttp::verb::post, "/v1/post/create", 11};
  req.set(bhttp::field::host, host_);
  req.set(bhttp::field::authorization, "Bearer " + token_);
  req.set(bhttp::field::content_type, "application/json");
  req.set("Idempotency-Key", content);
  req.body() = R"({"content":")" + content + "\"}";
  req.prepare_payload();
}

void load::run() {
  write_header(out_);
  signals_.async_wait([this](beast::error_code ec, int) {
    if (!ec)
      finish("interrupted");
  });
  on_flush_timer();
  arm();
  io_.run();
}

void load::on_flush_timer() {
  out_.flush();
  if (++progress_ticks_ % 10 == 0)
    std::cerr << "postd-chaos-load: t " << std::fixed << std::setprecision(0)
              << now_ms() / 1000 << " s: due " << next_post_ << "/" << total_
              << ", acknowledged " << acknowledged_ << ", in flight "
              << busy_.size() << ", waiting " << ready_.size()
              << ", retries pending " << retries_.size() << std::endl;
  flush_timer_.expires_after(std::chrono::seconds{1});
  flush_timer_.async_wait([this](beast::error_code ec) {
    if (!ec && !finished_)
      on_flush_timer();
  });
}

// Releases every send now due into the queue, hands them to connections
// and sets the timer for the next one.
void load::tick() {
  double now = now_ms();
  if (now >= end_ms_)
    return finish("abandoned");
  while (next_post_ < total_ && post_due_ms(next_post_) <= now) {
    ready_.push_back({next_post_, 1, post_due_ms(next_post_)});
    ++next_post_;
  }
  while (!retries_.empty() && retries_.top().due_ms <= now) {
    ready_.push_back(retries_.top());
    retries_.pop();
  }
  dispatch();
  arm();
  maybe_done();
}

void load::arm() {
  if (finished_)
    return;
  double next = end_ms_;
  if (next_post_ < total_)
    next = std::min(next, post_due_ms(next_post_));
  if (!retries_.empty())
    next = std::min(next, retries_.top().due_ms);
  if (armed_ && next >= armed_due_)
    return;
  armed_ = true;
  armed_due_ = next;
  timer_.expires_at(t0_ + std::chrono::ceil<steady::duration>(
                              std::chrono::duration<double, std::milli>{next}));
  timer_.async_wait([this](beast::error_code ec) {
    if (ec == net::error::operation_aborted || finished_)
      return; // set again for an earlier send
    armed_ = false;
    tick();
  });
}

std::shared_ptr<connection> load::take_idle() {
  while (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    if (c->reusable())
      return c;
    --open_; // dropped: its socket closes with it
  }
  return nullptr;
}

void load::dispatch() {
  while (!ready_.empty() && !finished_) {
    auto c = take_idle();
    bool fresh = c == nullptr;
    if (fresh) {
      if (open_ >= static_cast<std::size_t>(o_.connections))
        return; // the queue waits: its latency grows
      c = std::make_shared<connection>(io_, *this);
      ++open_;
    }
    send_item item = ready_.front();
    ready_.pop_front();
    busy_.insert(c);
    ++sends_;
    if (fresh)
      c->start(item);
    else
      c->send(item);
  }
}

void load::answered(const send_item& item,
                    const bhttp::response<bhttp::string_body>& res) {
  auto status = static_cast<int>(res.result_int());
  ++statuses_[status];
  std::string job_id;
  if (status == 202 || status == 503)
    job_id = job_id_of(res.body());
  record(item, now_ms(), status, job_id, "");
  if (status == 202)
    ++acknowledged_;
  else if (retried(status))
    retry(item, retry_after_ms(res));
  // Any other status is a bug worth seeing: recorded, never retried.
}

void load::failed(const send_item& item, const std::string& error) {
  ++errors_[error];
  record(item, -1, 0, "", error);
  retry(item, -1);
}

// Another send of the post after a pause: Retry-After when the server gave
// one, else 200 ms doubling, both capped at 2 s and spread a little so the
// retries of one outage do not all arrive at once.
void load::retry(const send_item& item, double retry_after) {
  double pause = retry_after >= 0
                     ? std::min(retry_after, max_pause_ms) *
                           std::uniform_real_distribution{1.0, 1.2}(rng_)
                     : std::min(first_pause_ms *
                                    std::pow(2.0, std::min(item.number, 8) - 1),
                                max_pause_ms) *
                           std::uniform_real_distribution{0.8, 1.2}(rng_);
  double due = now_ms() + pause;
  if (due >= end_ms_)
    return; // given up: the settle time is over
  retries_.push({item.post, item.number + 1, due});
  arm();
}

void load::record(const send_item& item, double answered_ms, int status,
                  const std::string& job_id, const std::string& error) {
  attempt a;
  a.sent_ms = item.due_ms;
  a.answered_ms = answered_ms;
  a.post = o_.prefix + "-" + std::to_string(item.post);
  a.number = item.number;
  a.status = status;
  a.job_id = job_id;
  a.error = error;
  write_attempt(out_, a);
}

void load::idle(std::shared_ptr<connection> c) {
  busy_.erase(c);
  idle_.push_back(std::move(c));
  dispatch();
  maybe_done();
}

void load::closed(const std::shared_ptr<connection>& c) {
  busy_.erase(c);
  --open_;
  dispatch();
  maybe_done();
}

void load::maybe_done() {
  if (next_post_ == total_ && ready_.empty() && retries_.empty() &&
      busy_.empty())
    finish("done");
}

// The end (all posts settled, the settle time over, or a signal): a send
// still in flight is recorded without an answer, since it may have queued
// a job whose id the record never saw.
void load::finish(const char* why) {
  if (finished_)
    return;
  finished_ = true;
  for (const auto& c : busy_) {
    ++errors_[why];
    record(c->item(), -1, 0, "", why);
  }
  out_.flush();
  io_.stop();
}

std::string load::summary() const {
  std::ostringstream s;
  s << "offered " << next_post_ << ", acknowledged " << acknowledged_
    << ", gave up " << next_post_ - acknowledged_ << ", sends " << sends_
    << ", answers by status {";
  const char* sep = "";
  for (const auto& [status, n] : statuses_) {
    s << sep << status << ": " << n;
    sep = ", ";
  }
  s << "}";
  return s.str();
}

std::string load::errors() const {
  std::ostringstream s;
  s << "sends without an answer {";
  const char* sep = "";
  for (const auto& [error, n] : errors_) {
    s << sep << error << ": " << n;
    sep = ", ";
  }
  s << "}";
  return s.str();
}

int run(int argc, char** argv) {
  options o;
  try {
    o = parse_options(argc, argv);
  } catch (const usage_error& e) {
    std::cerr << "postd-chaos-load: " << e.what()
              << "\nusage: postd-chaos-load --port P [--host H] --secret S "
                 "--rate N --duration S --prefix P --t0 EPOCH_MS --out FILE "
                 "[--connections 64] [--timeout-ms 5000] [--settle 60]\n";
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<char> buffer(1 << 20);
  std::ofstream out;
  out.rdbuf()->pubsetbuf(buffer.data(),
                         static_cast<std::streamsize>(buffer.size()));
  out.open(o.out, std::ios::trunc);
  if (!out)
    return std::cerr << "postd-chaos-load: cannot write " << o.out << "\n", 1;
  out << std::fixed << std::setprecision(3); // ms to the microsecond
  net::io_context io{1};
  try {
    load l{io, o, out};
    l.run();
    std::cout << l.summary() << std::endl;
    std::cerr << "postd-chaos-load: " << l.errors() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "postd-chaos-load: " << e.what() << "\n";
    return 1;
  }
  out.close();
  if (!out)
    return std::cerr << "postd-chaos-load: writing " << o.out << " failed\n", 1;
  return 0;
}

} // namespace
} // namespace postd::chaos

int main(int argc, char** argv) {
  try {
    return postd::chaos::run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "postd-chaos-load: " << e.what() << "\n";
    return 1;
  }
}
