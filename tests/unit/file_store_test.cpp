// Uploads stored by content: streamed to a temporary file, named by their
// SHA-256 and the type their bytes show, and nothing left behind by an
// upload that is refused or abandoned.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <unistd.h>

#include "core/file_store.hpp"
#include "core/hex.hpp"

namespace fs = std::filesystem;
using postd::core::file_upload;
using postd::core::stored_file_name;
using status = file_upload::status;

namespace {

struct FileStoreTest : ::testing::Test {
  fs::path dir =
      fs::temp_directory_path() /
      ("postd-files-" + std::to_string(::getpid()) + "-" +
       ::testing::UnitTest::GetInstance()->current_test_info()->name());
  ~FileStoreTest() override { fs::remove_all(dir); }

  std::size_t files() const {
    if (!fs::exists(dir))
      return 0;
    return static_cast<std::size_t>(
        std::distance(fs::directory_iterator{dir}, fs::directory_iterator{}));
  }
  static std::string sha256_hex(const std::string& bytes) {
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
           d);
    return postd::core::to_hex(
        std::string_view{reinterpret_cast<const char*>(d), sizeof d});
  }
  static std::string slurp(const fs::path& p) {
    std::ifstream in{p, std::ios::binary};
    return {std::istreambuf_iterator<char>{in}, {}};
  }
};

const std::string png = std::string("\x89PNG\r\n\x1A\n", 8) +
                        std::string(5000, 'p') + std::string("\0end", 4);

} // namespace

TEST_F(FileStoreTest, AnImageIsStoredUnderItsDigestWhateverTheChunks) {
  for (std::size_t chunk : {std::size_t{1}, std::size_t{5}, std::size_t{12},
                            std::size_t{4096}, png.size()}) {
    file_upload up{dir, 1 << 20};
    for (std::size_t i = 0; i < png.size(); i += chunk)
      ASSERT_EQ(up.write(std::string_view{png}.substr(i, chunk)), status::ok);
    std::string name;
    ASSERT_EQ(up.commit(name), status::ok) << up.error();
    EXPECT_EQ(name, sha256_hex(png) + ".png");
    EXPECT_TRUE(stored_file_name(name));
    EXPECT_EQ(slurp(dir / name), png);
  }
  EXPECT_EQ(files(), 1U); // the same content: one file
}

TEST_F(FileStoreTest, TextNamedPngIsNotAnImageAndLeavesNothing) {
  file_upload up{dir, 1 << 20};
  EXPECT_EQ(up.write("this is plain text pretending to be a .png"),
            status::not_an_image);
  std::string name;
  EXPECT_EQ(up.commit(name), status::not_an_image);
  EXPECT_EQ(files(), 0U);
  file_upload tiny{dir, 1 << 20};
  EXPECT_EQ(tiny.write("GIF"), status::ok); // too short to tell yet
  EXPECT_EQ(tiny.commit(name), status::not_an_image);
  file_upload empty{dir, 1 << 20};
  EXPECT_EQ(empty.commit(name), status::not_an_image);
  EXPECT_EQ(files(), 0U);
}

TEST_F(FileStoreTest, TooLargeStopsWritingAndLeavesNothing) {
  file_upload up{dir, 1000};
  EXPECT_EQ(up.write(std::string_view{png}.substr(0, 600)), status::ok);
  EXPECT_EQ(up.write(std::string_view{png}.substr(600, 600)),
            status::too_large);
  EXPECT_EQ(up.write("more"), status::too_large);
  std::string name;
  EXPECT_EQ(up.commit(name), status::too_large);
  EXPECT_EQ(files(), 0U);
}

TEST_F(FileStoreTest, AnAbandonedUploadLeavesNothing) {
  {
    file_upload up{dir, 1 << 20};
    ASSERT_EQ(up.write(png), status::ok);
    EXPECT_EQ(files(), 1U); // its temporary file
  }
  EXPECT_EQ(files(), 0U);
}

TEST_F(FileStoreTest, StoredBytesUploadedAgainOnlyTouchTheFile) {
  std::string first;
  {
    file_upload up{dir, 1 << 20};
    ASSERT_EQ(up.write(png), status::ok);
    ASSERT_EQ(up.commit(first), status::ok);
  }
  // An hour old, as the sweep would see it.
  auto old = fs::file_time_type::clock::now() - std::chrono::hours{1};
  fs::last_write_time(dir / first, old);
  std::string again;
  file_upload up{dir, 1 << 20};
  ASSERT_EQ(up.write(png), status::ok);
  ASSERT_EQ(up.commit(again), status::ok);
  EXPECT_EQ(again, first);
  EXPECT_EQ(files(), 1U); // no temporary file left
  EXPECT_EQ(slurp(dir / first), png);
  // Touched: the sweep counts its age from this upload.
  EXPECT_GT(fs::last_write_time(dir / first), old + std::chrono::minutes{59});
}

TEST(StoredFileName, OnlyDigestsWithAnImageExtension) {
  const std::string hex64(64, 'a');
  EXPECT_TRUE(stored_file_name(hex64 + ".jpg"));
  EXPECT_TRUE(stored_file_name(hex64 + ".webp"));
  for (const std::string& name :
       {hex64 + ".exe", hex64, hex64 + ".png/../x",
        std::string(63, 'a') + ".png", std::string(64, 'A') + ".png",
        "../" + hex64 + ".png", std::string(".upload-x"), hex64 + ".png.png"})
    EXPECT_FALSE(stored_file_name(name)) << name;
}
