#pragma once

// post_store_api over libpqxx: the adapter that lets actors use
// persistence::post_store (postgres.hpp) through the interface.

#include <memory>
#include <string>

#include "persistence/post_store.hpp"
#include "persistence/postgres.hpp"

namespace postd::persistence {

// Connects (URL, schema and timeouts in `options`); throws postgres_error
// (a core::store_error).
std::unique_ptr<post_store_api> make_postgres_post_store(pg_options options);

} // namespace postd::persistence
