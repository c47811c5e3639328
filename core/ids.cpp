#include "core/ids.hpp"

#include <boost/uuid/name_generator_sha1.hpp>
#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/string_generator.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <nlohmann/json.hpp>

#include "core/clock.hpp"

namespace postd::core {

namespace {

// One generator per thread: boost::uuids::random_generator is not
// thread-safe, and seeding one per call would cost a getrandom() each.
boost::uuids::uuid random_bits() {
  thread_local boost::uuids::random_generator generate;
  return generate();
}

} // namespace

std::string new_post_id() {
  auto id = random_bits();
  const auto ms = static_cast<std::uint64_t>(epoch_ms());
  for (int i = 0; i < 6; ++i)
    id.data[i] = static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
  id.data[6] = static_cast<std::uint8_t>((id.data[6] & 0x0f) | 0x70);
  id.data[8] = static_cast<std::uint8_t>((id.data[8] & 0x3f) | 0x80);
  return boost::uuids::to_string(id);
}

std::string legacy_post_id(std::string_view queue_base, std::string_view job_id,
                           std::int64_t timestamp_ms) {
  static const boost::uuids::name_generator_sha1 generate{
      boost::uuids::string_generator{}(std::string(legacy_post_namespace))};
  std::string name;
  name.reserve(queue_base.size() + job_id.size() + 21);
  name.append(queue_base).append(job_id).append(1, '@');
  name += std::to_string(timestamp_ms);
  return boost::uuids::to_string(generate(name));
}

std::string post_id_of_job(const nlohmann::json& data,
                           std::string_view queue_base, std::string_view job_id,
                           std::int64_t timestamp_ms) {
  if (auto it = data.find("postId"); it != data.end() && it->is_string() &&
                                     !it->get_ref<const std::string&>().empty())
    return it->get<std::string>();
  return legacy_post_id(queue_base, job_id, timestamp_ms);
}

std::string random_uuid() {
  return boost::uuids::to_string(random_bits());
}

} // namespace postd::core
