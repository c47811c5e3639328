#include "core/file_store.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/hex.hpp"
#include "core/ids.hpp"

namespace postd::core {

namespace fs = std::filesystem;

namespace {

// Writes all of `bytes` to `fd`.
bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    auto n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

} // namespace

struct file_upload::digest {
  digest() : ctx(EVP_MD_CTX_new()) {
    if (ctx == nullptr || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1)
      throw std::runtime_error("SHA-256 is not available");
  }
  ~digest() { EVP_MD_CTX_free(ctx); }
  digest(const digest&) = delete;
  digest& operator=(const digest&) = delete;
  void update(std::string_view bytes) const {
    EVP_DigestUpdate(ctx, bytes.data(), bytes.size());
  }
  std::string hex() const {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned int size = 0;
    EVP_DigestFinal_ex(ctx, out.data(), &size);
    return core::to_hex(
        std::string_view{reinterpret_cast<const char*>(out.data()), size});
  }
  EVP_MD_CTX* ctx;
};

file_upload::file_upload(fs::path dir, std::size_t max_bytes)
    : dir_(std::move(dir)), max_bytes_(max_bytes),
      sha_(std::make_unique<digest>()) {}

file_upload::~file_upload() {
  if (fd_ >= 0)
    ::close(fd_);
  if (!temp_.empty()) {
    std::error_code ignored;
    fs::remove(temp_, ignored);
  }
}

file_upload::status file_upload::fail(status s, std::string why) {
  status_ = s;
  error_ = std::move(why);
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!temp_.empty()) {
    std::error_code ignored;
    fs::remove(temp_, ignored);
    temp_.clear();
  }
  return s;
}

file_upload::status file_upload::flush_head() {
  type_ = core::sniff_image(head_);
  if (!type_)
    return fail(status::not_an_image);
  std::error_code ec;
  fs::create_directories(dir_, ec);
  temp_ = dir_ / (".upload-" + core::random_uuid());
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    temp_.clear();
    return fail(status::io_error, "cannot create a file in " + dir_.string() +
                                      ": " + std::strerror(errno));
  }
  if (!write_all(fd_, head_))
    return fail(status::io_error,
                std::string("write: ") + std::strerror(errno));
  head_.clear();
  head_.shrink_to_fit();
  return status::ok;
}

file_upload::status file_upload::write(std::string_view bytes) {
  if (status_ != status::ok)
    return status_;
  if (bytes.size() > max_bytes_ - size_)
    return fail(status::too_large);
  size_ += bytes.size();
  sha_->update(bytes);
  if (!type_) {
    auto need = core::image_signature_bytes - head_.size();
    head_.append(bytes.substr(0, need));
    bytes.remove_prefix(std::min(need, bytes.size()));
    if (head_.size() < core::image_signature_bytes)
      return status::ok;
    if (auto s = flush_head(); s != status::ok)
      return s;
  }
  if (!bytes.empty() && !write_all(fd_, bytes))
    return fail(status::io_error,
                std::string("write: ") + std::strerror(errno));
  return status::ok;
}

file_upload::status file_upload::commit(std::string& stored_name) {
  if (status_ != status::ok)
    return status_;
  if (!type_ && flush_head() != status::ok) // shorter than a signature
    return status_;
  stored_name = sha_->hex() + "." + std::string(type_->extension);
  auto target = dir_ / stored_name;
  // The same bytes are stored already (and were made durable then): the
  // upload is dropped, and the file touched, so that the sweep's age of it
  // counts from this post on.
  if (::utimensat(AT_FDCWD, target.c_str(), nullptr, 0) == 0)
    return fail(status::ok); // closes and removes the temporary file
  if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
    fd_ = -1;
    return fail(status::io_error,
                std::string("fsync: ") + std::strerror(errno));
  }
  fd_ = -1;
  // rename() replaces a file with the same content: same name, same bytes.
  std::error_code ec;
  fs::rename(temp_, target, ec);
  if (ec)
    return fail(status::io_error, "rename: " + ec.message());
  temp_.clear();
  // The new name is durable once the folder is.
  int dir = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0 || ::fsync(dir) != 0) {
    auto why = std::string("fsync of the folder: ") + std::strerror(errno);
    if (dir >= 0)
      ::close(dir);
    return fail(status::io_error, why);
  }
  ::close(dir);
  return status::ok;
}

bool stored_file_name(std::string_view name) {
  auto dot = name.find('.');
  if (dot != 64 || !core::image_type_of_extension(name.substr(65)))
    return false;
  return std::all_of(name.begin(), name.begin() + 64, [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

} // namespace postd::core
