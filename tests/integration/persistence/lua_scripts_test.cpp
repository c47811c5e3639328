#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "persistence/redis_client.hpp"
#include "support/test_env.hpp"

namespace postd::persistence {
namespace detail {
std::vector<std::pair<std::string_view, std::string_view>>
embedded_lua_scripts();
} // namespace detail

namespace {

namespace fs = std::filesystem;

// How often each `local function <name>` is defined in `text`.
std::map<std::string, int> function_definitions(const std::string& text) {
  static const std::regex definition(R"((^|\n)local function (\w+))");
  std::map<std::string, int> count;
  for (std::sregex_iterator it(text.begin(), text.end(), definition), end;
       it != end; ++it)
    ++count[(*it)[2]];
  return count;
}

TEST(LuaScripts, IncludesAreResolvedOncePerScript) {
  const auto scripts = detail::embedded_lua_scripts();
  ASSERT_GE(scripts.size(), 10U);
  for (auto [name, text] : scripts) {
    const std::string script(text);
    SCOPED_TRACE(std::string(name));
    EXPECT_EQ(script.find("@include"), std::string::npos);
    EXPECT_NE(script.find("\nlocal rcall = redis.call\n"), std::string::npos);
    for (const auto& [function, times] : function_definitions(script))
      EXPECT_EQ(times, 1) << function;
  }
}

TEST(LuaScripts, AHelperIncludedTwiceComesBeforeItsFirstUser) {
  // failJobs includes removeJob, and trim, which includes removeJob too.
  const std::string text = lua_script::embedded("failJobs").text();
  const auto defined = function_definitions(text);
  EXPECT_EQ(defined.at("removeJob"), 1);
  EXPECT_EQ(defined.at("trim"), 1);
  EXPECT_LT(text.find("local function removeJob"),
            text.find("local function trim"));
  EXPECT_LT(text.find("local rcall = redis.call"),
            text.find("local function removeJob"));
}

TEST(LuaScripts, AreFoundByCommandName) {
  EXPECT_NE(lua_script::embedded("takeJobs").text().find("moveToActive-8"),
            std::string::npos);
  EXPECT_THROW(lua_script::embedded("takeJobs-4"), std::out_of_range);
  EXPECT_THROW(lua_script::embedded("noSuchScript"), std::out_of_range);
}

TEST(LuaScripts, EveryScriptCompilesOnRedis) {
  redis_client redis{testing::test_redis()};
  for (auto [name, text] : detail::embedded_lua_scripts()) {
    SCOPED_TRACE(std::string(name));
    const lua_script script{std::string(text)};
    auto r = redis.command({"SCRIPT", "LOAD", script.text()});
    ASSERT_FALSE(reply_is_error(r.get())) << reply_string(r.get());
    EXPECT_EQ(reply_string(r.get()), script.sha());
  }
}

// cmake/LuaIncludes.cmake in script mode over scripts written to a scratch
// folder, as tests/lint/luacheck.sh runs it.
class LuaIncludes : public ::testing::Test {
protected:
  void SetUp() override { fs::create_directories(dir_ / "in" / "includes"); }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& path, const std::string& text) {
    std::ofstream(dir_ / "in" / path, std::ios::binary) << text;
  }
  std::string read(const std::string& name) {
    std::ifstream in(dir_ / "out" / name, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  // Resolves in/*.lua into out/; returns cmake's exit status and output.
  std::pair<int, std::string> resolve() {
    fs::create_directories(dir_ / "out");
    const std::string command =
        "cmake -DSCRIPTS_DIR=" + (dir_ / "in").string() +
        " -DOUTPUT_DIR=" + (dir_ / "out").string() + " -P " +
        testing::require_env("POSTD_SOURCE_DIR") +
        "/cmake/LuaIncludes.cmake 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr)
      return {-1, "popen failed"};
    std::string output;
    std::array<char, 4096> buffer{};
    while (auto n = std::fread(buffer.data(), 1, buffer.size(), pipe))
      output.append(buffer.data(), n);
    return {::pclose(pipe), output};
  }

  fs::path dir_ = fs::temp_directory_path() / testing::unique_name("lua");
};

TEST_F(LuaIncludes, ASharedIncludeGoesInOnceWhereFirstIncluded) {
  write("main-1.lua", "-- main\n--- @include \"includes/b\"\n"
                      "-- @include 'includes/c.lua';\nreturn b() + c()\n");
  write("includes/b.lua", "--- @include \"d\"\nlocal function b() end\n");
  write("includes/c.lua", "--- @include \"d\"\nlocal function c() end");
  write("includes/d.lua", "local d = 1\n");
  auto [status, output] = resolve();
  ASSERT_EQ(status, 0) << output;
  EXPECT_EQ(read("main-1.lua"), "-- main\nlocal d = 1\nlocal function b() end\n"
                                "local function c() end\nreturn b() + c()\n");
}

TEST_F(LuaIncludes, AMissingIncludeIsAnError) {
  write("main-1.lua", "return 1\n--- @include \"includes/gone\"\n");
  auto [status, output] = resolve();
  EXPECT_NE(status, 0);
  EXPECT_NE(output.find("main-1.lua:2: include not found: \"includes/gone\""),
            std::string::npos)
      << output;
}

TEST_F(LuaIncludes, ACycleIsAnError) {
  write("main-1.lua", "--- @include \"includes/a\"\n");
  write("includes/a.lua", "--- @include \"b\"\n");
  write("includes/b.lua", "--- @include \"a\"\n");
  auto [status, output] = resolve();
  EXPECT_NE(status, 0);
  EXPECT_NE(output.find("b.lua:1: include cycle"), std::string::npos) << output;
}

TEST_F(LuaIncludes, AMalformedIncludeIsAnError) {
  write("main-1.lua", "--- @include includes/a\n");
  write("includes/a.lua", "local a = 1\n");
  auto [status, output] = resolve();
  EXPECT_NE(status, 0);
  EXPECT_NE(output.find("main-1.lua:1: malformed include"), std::string::npos)
      << output;
}

} // namespace
} // namespace postd::persistence
