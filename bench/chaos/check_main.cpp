// postd-chaos-check: the verdict of a chaos run, from the load's record,
// the rows PostgreSQL holds and what Bull's queue still holds after the
// drain. Exit 0 PASS, 1 FAIL, 2 bad input (or output that could not be
// written).

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>

#include "checker.hpp"
#include "record.hpp"

namespace {

namespace chaos = postd::chaos;

constexpr const char* usage =
    "usage: postd-chaos-check --requests FILE --rows FILE\n"
    "                         --queue wait=N,active=N,delayed=N\n"
    "                         [--json OUT] [--text OUT]\n"
    "Checks a chaos run: every post answered 202 is exactly one row with the\n"
    "jobId it was answered, no post is two rows, no row is foreign, no job is\n"
    "left in the queue. Prints the counts and the verdict (and on FAIL\n"
    "examples). Exit 0 PASS, 1 FAIL, 2 bad input.\n";

// Bad input, options included: the tool's exit 2. `located` messages start
// with FILE:LINE and are printed as they are, the way compilers print.
struct input_error {
  std::string message;
  bool usage = false; // about the command line: the usage follows
  bool located = false;
};

struct options {
  std::map<std::string, std::string> values; // "requests" -> FILE...
};

options parse_args(int argc, char** argv) {
  static constexpr std::array<std::string_view, 5> names{
      "requests", "rows", "queue", "json", "text"};
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (!arg.starts_with("--"))
      throw input_error{"unexpected argument '" + arg + "'", true};
    auto eq = arg.find('=');
    auto name = arg.substr(2, eq == std::string::npos ? eq : eq - 2);
    if (std::find(names.begin(), names.end(), name) == names.end())
      throw input_error{"unknown option '--" + name + "'", true};
    if (o.values.contains(name))
      throw input_error{"--" + name + " given twice", true};
    if (eq != std::string::npos)
      o.values[name] = arg.substr(eq + 1);
    else if (i + 1 < argc)
      o.values[name] = argv[++i];
    else
      throw input_error{"--" + name + " needs a value", true};
  }
  for (const char* required : {"requests", "rows", "queue"})
    if (!o.values.contains(required))
      throw input_error{std::string("missing --") + required, true};
  return o;
}

// "wait=N,active=N,delayed=N", each key once, in any order.
chaos::queue_left parse_queue(const std::string& text) {
  std::map<std::string, std::int64_t> counts;
  std::istringstream in(text);
  for (std::string pair; std::getline(in, pair, ',');) {
    auto eq = pair.find('=');
    auto key = pair.substr(0, eq);
    auto value = eq == std::string::npos ? "" : pair.substr(eq + 1);
    if (key != "wait" && key != "active" && key != "delayed")
      throw input_error{"--queue: unknown key '" + key +
                        "' (expected wait=N,active=N,delayed=N)"};
    std::int64_t n = 0;
    auto [end, ec] =
        std::from_chars(value.data(), value.data() + value.size(), n);
    if (value.empty() || ec != std::errc{} ||
        end != value.data() + value.size() || n < 0)
      throw input_error{std::string("--queue: ").append(key) + " '" + value +
                        "' is not a count (a whole number >= 0)"};
    if (!counts.emplace(key, n).second)
      throw input_error{"--queue: " + key + " given twice"};
  }
  if (counts.size() != 3)
    throw input_error{"--queue '" + text +
                      "' needs all of wait=N,active=N,delayed=N"};
  return {counts["wait"], counts["active"], counts["delayed"]};
}

// Reads FILE with `read` (read_attempts, read_rows); a bad line is reported
// as FILE:LINE, the way compilers do, so an editor can jump to it.
template <typename Read> auto read_file(const std::string& path, Read read) {
  std::ifstream in(path);
  if (!in)
    throw input_error{"cannot open '" + path + "': " + std::strerror(errno)};
  if (std::error_code ec; std::filesystem::is_directory(path, ec))
    throw input_error{"'" + path + "' is a directory"};
  try {
    auto result = read(in);
    if (in.bad())
      throw input_error{"cannot read '" + path + "'"};
    return result;
  } catch (const chaos::record_error& e) {
    // record_error's text starts "line N: ", which FILE:N: replaces.
    std::string message = e.what();
    auto prefix = "line " + std::to_string(e.line()) + ": ";
    if (message.starts_with(prefix))
      message.erase(0, prefix.size());
    throw input_error{path + ":" + std::to_string(e.line()) + ": " + message,
                      false, true};
  }
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out)
    throw input_error{"cannot write '" + path + "': " + std::strerror(errno)};
}

int run(int argc, char** argv) {
  auto o = parse_args(argc, argv);
  auto queue = parse_queue(o.values["queue"]);
  auto attempts = read_file(o.values["requests"], [](std::istream& in) {
    return chaos::read_attempts(in);
  });
  auto rows = read_file(o.values["rows"],
                        [](std::istream& in) { return chaos::read_rows(in); });
  auto result = chaos::check(attempts, rows, queue);
  auto text = chaos::to_text(result);
  std::cout << text << std::flush;
  if (o.values.contains("text"))
    write_file(o.values["text"], text);
  if (o.values.contains("json"))
    write_file(o.values["json"], chaos::to_json(result).dump(2) + "\n");
  return result.passed() ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  if (argc == 2 &&
      (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::cout << usage;
    return 0;
  }
  try {
    return run(argc, argv);
  } catch (const input_error& e) {
    std::cerr << (e.located ? "" : "postd-chaos-check: ") << e.message << '\n';
    if (e.usage)
      std::cerr << usage;
    return 2;
  }
}
