// postd-chaos-plan SCENARIO: checks a chaos scenario before anything starts
// and prints it normalised (one directive a line, events in time order),
// the form bench/chaos.sh reads. Exit 0 valid, 2 invalid or unreadable.

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "scenario.hpp"

namespace {

constexpr const char* usage =
    "usage: postd-chaos-plan SCENARIO\n"
    "Checks a chaos scenario (bench/scenarios/*.scn) and prints it normalised\n"
    "on stdout. Exit 0 valid; 2 invalid (FILE:LINE: message on stderr) or\n"
    "unreadable.\n";

} // namespace

int main(int argc, char** argv) {
  const std::string arg = argc == 2 ? argv[1] : "";
  if (arg == "-h" || arg == "--help") {
    std::cout << usage;
    return 0;
  }
  if (argc != 2 || arg.empty() || arg.starts_with("-")) {
    std::cerr << usage;
    return 2;
  }
  std::ifstream in(arg);
  if (!in) {
    std::cerr << "postd-chaos-plan: cannot open '" << arg
              << "': " << std::strerror(errno) << '\n';
    return 2;
  }
  // A directory opens and reads as empty: it would pass as all defaults.
  if (std::error_code ec; std::filesystem::is_directory(arg, ec)) {
    std::cerr << "postd-chaos-plan: '" << arg << "' is a directory\n";
    return 2;
  }
  postd::chaos::scenario s;
  try {
    s = postd::chaos::parse_scenario(in);
  } catch (const postd::chaos::scenario_error& e) {
    std::cerr << arg << ':' << e.line() << ": " << e.message() << '\n';
    return 2;
  }
  if (in.bad()) {
    std::cerr << "postd-chaos-plan: cannot read '" << arg << "'\n";
    return 2;
  }
  std::cout << postd::chaos::normalised(s);
  return 0;
}
