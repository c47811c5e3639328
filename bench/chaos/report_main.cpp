// postd-chaos-report: a chaos run's report from its files (bench/chaos.sh
// runs it after the checker, then gnuplot on bench/chaos/timeline.gp).
//
//   postd-chaos-report --scenario plan.txt --requests F --samples F
//                      --events F --check check.json --out DIR [--name NAME]
//
// Writes DIR/report.md, DIR/timeline.dat, DIR/bands.dat and DIR/title.txt
// (the plot's title, for a gnuplot run given no `name`). requests.csv and
// plan.txt are required; a missing events.csv is a run without faults, a
// missing samples.csv or check.json leaves their parts empty. Exit 0, or 2
// with `FILE:LINE: message` on bad input.

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "report.hpp"

namespace postd::chaos {
namespace {

struct input_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::map<std::string, std::string> parse_options(int argc, char** argv) {
  static const std::set<std::string> known = {
      "scenario", "requests", "samples", "events", "check", "out", "name"};
  std::map<std::string, std::string> o;
  for (int i = 1; i < argc; i += 2) {
    std::string name = argv[i];
    if (name.rfind("--", 0) != 0 || i + 1 >= argc)
      throw input_error("expected --name value pairs, got '" + name + "'");
    name = name.substr(2);
    if (!known.contains(name))
      throw input_error("unknown option --" + name);
    o[name] = argv[i + 1];
  }
  for (const char* required : {"scenario", "requests", "out"})
    if (!o.contains(required))
      throw input_error(std::string("--") + required + " is required");
  return o;
}

// Runs `read` on the file; its record_error becomes FILE:LINE: message.
template <typename Read>
auto read_file(const std::string& path, Read read, bool required)
    -> decltype(read(std::declval<std::istream&>())) {
  std::ifstream in(path);
  if (!in) {
    if (required)
      throw input_error(path + ": cannot read it");
    return {};
  }
  try {
    return read(in);
  } catch (const record_error& e) {
    std::string what = e.what(); // "line N: message"
    throw input_error(path + ":" + std::to_string(e.line()) + ": " +
                      what.substr(what.find(": ") + 2));
  }
}

std::string slurp(std::istream& in) {
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The scenario's name from the run's folder, `<scenario>-<yyyymmdd-hhmmss>`.
std::string name_of(const std::string& dir) {
  auto base = std::filesystem::path(dir).lexically_normal().filename();
  if (base.empty())
    base =
        std::filesystem::path(dir).lexically_normal().parent_path().filename();
  return std::regex_replace(base.string(), std::regex("-[0-9]{8}-[0-9]{6}$"),
                            "");
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out)
    throw input_error(path.string() + ": cannot write it");
}

// "kill-one: PASS (acknowledged 3000, lost 0, duplicated 0)": the plot's.
std::string title_of(const report_input& in) {
  std::string title =
      in.name + ": " + in.check.value("verdict", std::string{"no verdict"});
  const char* sep = " (";
  for (const char* key : {"acknowledged", "lost", "duplicated"})
    if (auto it = in.check.find(key); it != in.check.end()) {
      title += sep + std::string(key) + " " + it->dump();
      sep = ", ";
    }
  return title + (*sep == ',' ? ")\n" : "\n");
}

int run(int argc, char** argv) {
  auto o = parse_options(argc, argv);
  report_input in;
  in.name = o.contains("name") ? o["name"] : name_of(o["out"]);
  in.plan_text = read_file(o["scenario"], slurp, true);
  try {
    std::istringstream plan(in.plan_text);
    in.plan = parse_scenario(plan);
  } catch (const scenario_error& e) {
    std::string what = e.what();
    throw input_error(o["scenario"] + ":" + std::to_string(e.line()) + ": " +
                      what.substr(what.find(": ") + 2));
  }
  in.attempts = read_file(o["requests"], read_attempts, true);
  if (o.contains("samples"))
    in.samples = read_file(o["samples"], read_samples, false);
  if (o.contains("events"))
    in.events = read_file(o["events"], read_events, false);
  if (o.contains("check")) {
    std::string text = read_file(o["check"], slurp, false);
    in.check = nlohmann::json::parse(text, nullptr, false);
    if (!text.empty() && in.check.is_discarded())
      throw input_error(o["check"] + ":1: not JSON");
    if (!in.check.is_object())
      in.check = nlohmann::json::object();
  }

  const std::filesystem::path dir = o["out"];
  std::filesystem::create_directories(dir);
  const double end_s = run_end_s(in.attempts, in.samples, in.plan);
  std::ostringstream data;
  write_timeline(data, timeline(in.attempts, in.samples, end_s));
  write_file(dir / "timeline.dat", data.str());
  std::ostringstream bands;
  write_bands(bands, build_bands(in.events, in.plan));
  write_file(dir / "bands.dat", bands.str());
  write_file(dir / "title.txt", title_of(in));
  write_file(dir / "report.md", render_report(in));
  return 0;
}

} // namespace
} // namespace postd::chaos

int main(int argc, char** argv) {
  try {
    return postd::chaos::run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "postd-chaos-report: " << e.what() << "\n";
    return 2;
  }
}
