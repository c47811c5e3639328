#include "persistence/postgres_post_store.hpp"

#include "persistence/postgres.hpp"

namespace postd::persistence {

namespace {

class postgres_post_store final : public post_store_api {
public:
  explicit postgres_post_store(pg_options options)
      : store_(std::move(options)) {}

  core::insert_outcome
  insert_posts(const std::vector<core::new_post>& rows) override {
    return store_.insert_posts(rows);
  }
  std::size_t forget_keys(std::int64_t queued_before_ms) override {
    return store_.forget_keys(queued_before_ms);
  }
  std::optional<core::post> find_post(const std::string& id) override {
    return store_.find_post(id);
  }
  std::optional<core::post>
  find_post_by_job(const std::string& job_id,
                   const std::string& author_id) override {
    return store_.find_post_by_job(job_id, author_id);
  }
  std::vector<core::post>
  posts_by_author(const std::string& author_id, std::size_t limit,
                  const std::optional<core::post>& after) override {
    return store_.posts_by_author(author_id, limit, after);
  }
  void ping() override { store_.ping(); }

private:
  post_store store_;
};

} // namespace

std::unique_ptr<post_store_api> make_postgres_post_store(pg_options options) {
  return std::make_unique<postgres_post_store>(std::move(options));
}

} // namespace postd::persistence
