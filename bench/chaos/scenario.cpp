#include "scenario.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <istream>
#include <limits>
#include <sstream>
#include <string_view>

namespace postd::chaos {
namespace {

using tokens = std::vector<std::string>;

constexpr int max_delay_ms = 60000;
constexpr double max_for_s = 3600; // the longest load: a longer one is a typo

struct fault_key {
  std::string_view name;
  double max;
  bool whole; // milliseconds, not a chance
};

// The keys postd's fault API takes (core/fault.hpp's fault_specs) and `for`.
constexpr std::array<fault_key, 7> fault_keys{{
    {"writer_error_rate", 1, false},
    {"writer_crash_rate", 1, false},
    {"enqueue_error_rate", 1, false},
    {"enqueue_crash_rate", 1, false},
    {"reader_crash_rate", 1, false},
    {"db_delay_ms", max_delay_ms, true},
    {"redis_delay_ms", max_delay_ms, true},
}};

// Shortest text that reads back as the same double, never in exponent form
// (which the parser refuses).
std::string format_number(double value) {
  std::array<char, 512> buffer{};
  auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(),
                                 value, std::chars_format::fixed);
  if (ec != std::errc{})
    throw std::logic_error("chaos scenario: a number too long to print");
  return {buffer.data(), end};
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return c >= '0' && c <= '9'; });
}

// Only plain decimals ("10", "2.5"): no sign, exponent, hex, nan or inf, so
// what a person reads is what the kit does.
bool plain_decimal(std::string_view s) {
  auto dot = s.find('.');
  return all_digits(s.substr(0, dot)) &&
         (dot == std::string_view::npos || all_digits(s.substr(dot + 1)));
}

std::string range_text(double lo, double hi) {
  if (hi == std::numeric_limits<double>::infinity())
    return format_number(lo) + " or more";
  return format_number(lo) + ".." + format_number(hi);
}

// A token in an error message: a runaway one is cut short.
std::string shown(std::string_view token) {
  constexpr std::size_t longest = 40;
  if (token.size() > longest)
    return std::string(token.substr(0, longest)) + "...";
  return std::string(token);
}

std::string quoted(std::string_view token) {
  return "'" + shown(token) + "'";
}

// The tokens of one line, read left to right; every read names what it
// wants, so a short or a long line is reported with what was expected.
class line_reader {
public:
  line_reader(tokens words, int line) : words_(std::move(words)), line_(line) {}

  int line() const { return line_; }
  [[noreturn]] void fail(const std::string& message) const {
    throw scenario_error(line_, message);
  }

  const std::string& next(const std::string& wanted) {
    if (next_ == words_.size())
      fail(wanted);
    return words_[next_++];
  }
  bool at_end() const { return next_ == words_.size(); }

  // Trailing garbage is an error: `at 10 kill redis now` is a mistake
  // somebody should see, not a kill.
  void finish() const {
    if (at_end())
      return;
    std::string before;
    for (std::size_t i = 0; i < next_; ++i)
      before += (i == 0 ? "" : " ") + words_[i];
    fail("unexpected " + quoted(words_[next_]) + " after '" + before + "'");
  }

  int whole(const std::string& what, int lo, int hi) {
    const auto& token = next(what + " needs a value (a whole number " +
                             range_text(lo, hi) + ")");
    int value = 0;
    auto [end, ec] =
        std::from_chars(token.data(), token.data() + token.size(), value);
    if (!all_digits(token) || end != token.data() + token.size())
      fail(what + " " + quoted(token) + " is not a whole number (expected " +
           range_text(lo, hi) + ")");
    if (ec != std::errc{} || value < lo || value > hi)
      fail(what + " " + shown(token) + " is out of range (expected " +
           range_text(lo, hi) + ")");
    return value;
  }

  double decimal(std::string_view token, const std::string& what, double lo,
                 double hi) const {
    double value = 0;
    if (!plain_decimal(token))
      fail(what + " " + quoted(token) +
           " is not a number (expected a plain decimal like 10 or 2.5)");
    auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(),
                                     value, std::chars_format::fixed);
    if (ec != std::errc{} || end != token.data() + token.size() || value < lo ||
        value > hi)
      fail(what + " " + shown(token) + " is out of range (expected " +
           range_text(lo, hi) + ")");
    return value;
  }

private:
  tokens words_;
  int line_;
  std::size_t next_ = 0;
};

// A line without its comment, split at white space.
tokens split(const std::string& line) {
  std::istringstream in(line.substr(0, line.find('#')));
  tokens words;
  for (std::string word; in >> word;)
    words.push_back(std::move(word));
  return words;
}

// `postd N`, `redis`, `pg`, `pgbouncer`: what kill, stop, cont and restart
// act on.
void read_process(line_reader& r, fault_event& e) {
  const std::string expected = "postd N, redis, pg or pgbouncer";
  e.target = r.next(e.action + " needs a target (" + expected + ")");
  if (e.target == "postd")
    e.instance = r.whole(e.action + " postd", 1, 8);
  else if (e.target != "redis" && e.target != "pg" && e.target != "pgbouncer")
    r.fail(e.action + " " + quoted(e.target) + " (expected " + expected + ")");
}

// `redis` or `pg`: what postd talks to, so what delay, heal and partition
// stand between.
void read_store(line_reader& r, fault_event& e) {
  e.target = r.next(e.action + " needs a target (redis or pg)");
  if (e.target != "redis" && e.target != "pg")
    r.fail(e.action + " " + quoted(e.target) + " (expected redis or pg)");
}

std::string fault_key_list() {
  std::string list = "for";
  for (const auto& k : fault_keys)
    list += ", " + std::string(k.name);
  return list;
}

void read_fault(line_reader& r, fault_event& e, const std::string& pair) {
  auto eq = pair.find('=');
  if (eq == std::string::npos)
    r.fail("faults " + quoted(pair) + " (expected key=value)");
  auto key = pair.substr(0, eq);
  auto value = std::string_view(pair).substr(eq + 1);
  if (e.faults.contains(key))
    r.fail("faults " + quoted(key) + " given twice");
  double number = 0;
  if (key == "for") {
    number = r.decimal(value, "faults for", 0, max_for_s);
    if (number == 0)
      r.fail("faults for=" + std::string(value) +
             " (expected seconds > 0; leave it out for until healed)");
  } else {
    const auto* k =
        std::find_if(fault_keys.begin(), fault_keys.end(),
                     [&](const fault_key& f) { return f.name == key; });
    if (k == fault_keys.end())
      r.fail("faults: unknown key " + quoted(key) + " (expected " +
             fault_key_list() + ")");
    number = r.decimal(value, "faults " + key, 0, k->max);
    if (k->whole && number != static_cast<int>(number))
      r.fail("faults " + key + "=" + std::string(value) +
             " is not a whole number of milliseconds");
  }
  // The runner sends the values as JSON numbers: "05" or "0.20" would not
  // be one, or would not read back the same.
  e.faults[key] = format_number(number);
}

void read_faults(line_reader& r, fault_event& e) {
  if (r.at_end())
    r.fail("faults needs at least one key=value (keys: " + fault_key_list() +
           ")");
  while (!r.at_end())
    read_fault(r, e, r.next(""));
  if (e.faults.size() == 1 && e.faults.contains("for"))
    r.fail("faults needs a fault besides 'for'");
}

fault_event read_event(line_reader& r) {
  fault_event e;
  e.line = r.line();
  const auto& time = r.next("at needs a time (seconds after the load starts) "
                            "and an action");
  // Checked against `duration` once the whole file is read.
  e.at_s = r.decimal(time, "at", 0, std::numeric_limits<double>::infinity());
  e.action = r.next("at " + time +
                    " needs an action (kill, stop, cont, "
                    "restart, delay, heal, partition, faults, failover)");
  const auto& a = e.action;
  if (a == "kill" || a == "stop" || a == "cont" || a == "restart") {
    read_process(r, e);
  } else if (a == "delay") {
    read_store(r, e);
    e.delay_ms = r.whole("delay " + e.target, 1, max_delay_ms);
  } else if (a == "heal" || a == "partition") {
    read_store(r, e);
  } else if (a == "faults") {
    read_faults(r, e);
  } else if (a == "failover") {
    e.target = r.next("failover needs a target (redis)");
    if (e.target != "redis")
      r.fail("failover " + quoted(e.target) + " (expected redis)");
  } else {
    r.fail("unknown action " + quoted(a) +
           " (expected kill, stop, cont, restart, delay, heal, partition, "
           "faults, failover)");
  }
  r.finish();
  return e;
}

void read_env(line_reader& r, scenario& s) {
  const auto& pair = r.next("env needs NAME=VALUE");
  auto eq = pair.find('=');
  auto name = pair.substr(0, eq);
  bool good_name =
      !name.empty() && name[0] >= 'A' && name[0] <= 'Z' &&
      std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
      });
  if (eq == std::string::npos)
    r.fail("env " + quoted(pair) + " (expected NAME=VALUE)");
  if (!good_name)
    r.fail("env " + quoted(pair) +
           ": the name must be like [A-Z][A-Z0-9_]* (e.g. ACK_REPLICAS=1)");
  if (s.env.contains(name))
    r.fail("env " + name + " given twice");
  s.env[name] = pair.substr(eq + 1);
  r.finish();
}

// Reads a scalar directive into `s`; `seen` holds the line each was first
// given on, as a second one is a mistake (which of the two was meant?).
void read_scalar(line_reader& r, const std::string& directive, scenario& s,
                 std::map<std::string, int>& seen) {
  if (auto first = seen.find(directive); first != seen.end())
    r.fail("'" + directive + "' given twice (first on line " +
           std::to_string(first->second) + ")");
  seen[directive] = r.line();
  if (directive == "duration") {
    s.duration_s = r.whole("duration", 1, 3600);
  } else if (directive == "rate") {
    s.rate = r.whole("rate", 1, 100000);
  } else if (directive == "instances") {
    s.instances = r.whole("instances", 1, 8);
  } else if (directive == "sentinel") {
    const auto& v = r.next("sentinel needs a value (on or off)");
    if (v != "on" && v != "off")
      r.fail("sentinel " + quoted(v) + " (expected on or off)");
    s.sentinel = v == "on";
  } else { // aof
    s.aof = r.next("aof needs a value (always, everysec or off)");
    if (s.aof != "always" && s.aof != "everysec" && s.aof != "off")
      r.fail("aof " + quoted(s.aof) + " (expected always, everysec or off)");
  }
  r.finish();
}

// What can only be judged with the whole file read: `duration`, `instances`
// and `sentinel` may come after the events that depend on them.
void check_events(const scenario& s) {
  for (const auto& e : s.events) {
    if (e.at_s >= s.duration_s)
      throw scenario_error(e.line, "at " + format_number(e.at_s) +
                                       " is not before the end of the load "
                                       "(duration " +
                                       format_number(s.duration_s) + ")");
    if (e.instance > s.instances)
      throw scenario_error(
          e.line, e.action + " postd " + std::to_string(e.instance) +
                      " but instances is " + std::to_string(s.instances));
    if (e.action == "failover" && !s.sentinel)
      throw scenario_error(e.line, "failover needs 'sentinel on'");
  }
}

} // namespace

std::string fault_event::describe() const {
  std::string text = action;
  if (action == "faults") {
    for (const auto& [key, value] : faults)
      text.append(" ").append(key).append("=").append(value);
    return text;
  }
  text += " " + target;
  if (target == "postd")
    text += " " + std::to_string(instance);
  if (action == "delay")
    text += " " + std::to_string(delay_ms);
  return text;
}

scenario parse_scenario(std::istream& in) {
  scenario s;
  std::map<std::string, int> seen;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    auto words = split(line);
    if (words.empty())
      continue;
    line_reader r(std::move(words), number);
    const auto directive = r.next("");
    if (directive == "at")
      s.events.push_back(read_event(r));
    else if (directive == "env")
      read_env(r, s);
    else if (directive == "duration" || directive == "rate" ||
             directive == "instances" || directive == "sentinel" ||
             directive == "aof")
      read_scalar(r, directive, s, seen);
    else
      r.fail("unknown directive " + quoted(directive) +
             " (expected duration, rate, instances, sentinel, aof, env, at)");
  }
  check_events(s);
  std::stable_sort(s.events.begin(), s.events.end(),
                   [](const fault_event& a, const fault_event& b) {
                     return a.at_s < b.at_s;
                   });
  return s;
}

std::string normalised(const scenario& s) {
  std::string text = "duration " + format_number(s.duration_s) + "\n";
  text += "rate " + std::to_string(s.rate) + "\n";
  text += "instances " + std::to_string(s.instances) + "\n";
  text += std::string("sentinel ") + (s.sentinel ? "on" : "off") + "\n";
  text += "aof " + s.aof + "\n";
  for (const auto& [name, value] : s.env)
    text.append("env ").append(name).append("=").append(value) += "\n";
  for (const auto& e : s.events)
    text += "at " + format_number(e.at_s) + " " + e.describe() + "\n";
  return text;
}

} // namespace postd::chaos
