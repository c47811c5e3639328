#include "http/upload.hpp"

#include "core/log.hpp"
#include "http/errors.hpp"

namespace postd::http {

namespace {

// Bytes a content of `chars` characters can take in UTF-8.
std::size_t content_bytes(std::size_t chars) {
  return chars * 4;
}

} // namespace

form_reader::form_reader(std::string_view boundary,
                         std::filesystem::path storage_dir,
                         upload_limits limits)
    : dir_(std::move(storage_dir)), limits_(limits),
      parser_(boundary,
              {[this](const multipart_part& p) { return on_part(p); },
               [this](std::string_view d) { return on_data(d); },
               [this] { return on_part_end(); }},
              {.max_header_bytes = 8192, .max_parts = limits.max_files + 16}) {}

std::size_t form_reader::max_body_bytes(const upload_limits& limits) {
  // Each part's header block is at most 8 KiB (the parser's limit), and a
  // few small fields besides `content` and `files` are tolerated.
  constexpr std::size_t per_part = 8192 + 128;
  return limits.max_files * (limits.max_file_bytes + per_part) +
         content_bytes(limits.max_content_chars) + 16 * per_part;
}

bool form_reader::refuse(api_response r) {
  if (!refusal_)
    refusal_ = std::move(r);
  // An uncommitted file leaves nothing behind.
  file_.reset();
  read_.clear();
  return false;
}

bool form_reader::on_part(const multipart_part& part) {
  if (part.name == "files") {
    if (++files_ > limits_.max_files)
      return refuse(error_response(400, "Too many files: at most " +
                                            std::to_string(limits_.max_files) +
                                            " per post"));
    kind_ = part_kind::file;
    file_ = std::make_unique<core::file_upload>(dir_, limits_.max_file_bytes);
    return true;
  }
  if (part.name == "content" && !part.has_filename) {
    if (form_.has_content)
      return refuse(error_response(
          400, std::vector<std::string>{"content must be sent once"}));
    form_.has_content = true;
    kind_ = part_kind::content;
    return true;
  }
  if (part.has_filename) // Nest (multer): a file under another name
    return refuse(error_response(400, "Unexpected field " + part.name));
  kind_ = part_kind::ignored; // another text field: read past
  return true;
}

bool form_reader::on_data(std::string_view bytes) {
  switch (kind_) {
  case part_kind::content:
    if (bytes.size() >
        content_bytes(limits_.max_content_chars) - form_.content.size())
      return refuse(error_response(
          400, std::vector<std::string>{
                   "content must be shorter than or equal to " +
                   std::to_string(limits_.max_content_chars) + " characters"}));
    form_.content.append(bytes);
    return true;
  case part_kind::file:
    return file_ok(file_->write(bytes));
  case part_kind::ignored:
    return true;
  }
  return true;
}

bool form_reader::on_part_end() {
  if (kind_ != part_kind::file)
    return true;
  read_.push_back(std::move(file_));
  return true;
}

bool form_reader::file_ok(core::file_upload::status s) {
  using status = core::file_upload::status;
  switch (s) {
  case status::ok:
    return true;
  case status::too_large:
    return refuse(error_response(
        413, "File too large: at most " +
                 std::to_string(limits_.max_file_bytes) + " bytes"));
  case status::not_an_image:
    return refuse(error_response(
        415, "Only JPEG, PNG, GIF and WebP images can be attached"));
  case status::io_error:
    break;
  }
  log::error("storing an attachment failed", {{"error", file_->error()}});
  auto r = error_response(503, "File storage unavailable, try again later");
  r.headers.emplace_back("Retry-After", "5");
  return refuse(std::move(r));
}

bool form_reader::feed(std::string_view bytes) {
  if (refusal_)
    return false;
  if (parser_.feed(bytes))
    return true;
  if (!refusal_)
    refuse(error_response(400, "Malformed multipart body: " + parser_.error()));
  return false;
}

bool form_reader::finish() {
  if (refusal_)
    return false;
  if (!parser_.finish()) {
    refuse(error_response(400, "Malformed multipart body: " +
                                   (parser_.error().empty()
                                        ? std::string("it ended early")
                                        : parser_.error())));
    return false;
  }
  if (!form_.has_content)
    return refuse(error_response(
        400, std::vector<std::string>{"content must not be empty",
                                      "content must be a string"}));
  for (auto& f : read_) {
    std::string name;
    file_ = std::move(f);
    if (!file_ok(file_->commit(name)))
      return false;
    form_.stored.push_back(std::move(name));
  }
  file_.reset();
  read_.clear();
  return true;
}

} // namespace postd::http
