#include "checker.hpp"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <unordered_map>

namespace postd::chaos {
namespace {

// All that the record says about one post, across its sends.
struct post_history {
  std::string_view post;
  int sends = 0;
  bool acknowledged = false;
  double first_ack_ms = 0; // when the first 202 came
  // False once a send may have queued a job whose id we never saw: it got
  // no answer, or a 5xx without a jobId (a timeout, a lost answer, a proxy's
  // 502). A 4xx queued nothing.
  bool all_ids_known = true;
  std::vector<std::string_view> job_ids; // every id an answer carried
  std::vector<const row*> rows;

  bool carried(std::string_view id) const {
    return std::find(job_ids.begin(), job_ids.end(), id) != job_ids.end();
  }
};

// The posts in the order they were first sent, so the examples come out in
// the record's order; `index` finds them by content.
struct histories {
  std::vector<post_history> posts;
  std::unordered_map<std::string_view, std::size_t> index;

  post_history* find(std::string_view post) {
    auto i = index.find(post);
    return i == index.end() ? nullptr : &posts[i->second];
  }
};

void note(std::int64_t& count, std::vector<std::string>& examples,
          std::string example) {
  ++count;
  if (examples.size() < max_examples)
    examples.push_back(std::move(example));
}

histories gather(const std::vector<attempt>& attempts,
                 const std::vector<row>& rows,
                 check_result::example_lists& examples, std::int64_t& foreign) {
  histories h;
  for (const auto& a : attempts) {
    auto [i, fresh] = h.index.try_emplace(a.post, h.posts.size());
    if (fresh)
      h.posts.emplace_back().post = a.post;
    auto& p = h.posts[i->second];
    ++p.sends;
    if (a.status == 202 && !p.acknowledged) {
      p.acknowledged = true;
      p.first_ack_ms = a.answered_ms;
    }
    if (!a.answered() || (a.status >= 500 && a.job_id.empty()))
      p.all_ids_known = false;
    if (!a.job_id.empty() && !p.carried(a.job_id))
      p.job_ids.emplace_back(a.job_id);
  }
  for (const auto& r : rows) {
    if (auto* p = h.find(r.content))
      p->rows.push_back(&r);
    else
      note(foreign, examples.foreign,
           r.content + " (jobId " + r.job_id + ", id " + r.post_id + ")");
  }
  return h;
}

std::string joined(const std::vector<std::string_view>& ids) {
  if (ids.empty())
    return "none";
  std::string text;
  for (auto id : ids)
    text += (text.empty() ? "" : ", ") + std::string(id);
  return text;
}

std::string row_ids(const post_history& p) {
  std::string text;
  for (const auto* r : p.rows)
    text += (text.empty() ? "" : ", ") + r->job_id;
  return text;
}

std::string sends_text(const post_history& p) {
  return std::to_string(p.sends) + (p.sends == 1 ? " send" : " sends");
}

void judge(const post_history& p, check_result& r) {
  auto& ex = r.examples;
  std::string post(p.post);
  if (p.acknowledged)
    ++r.acknowledged;
  if (p.acknowledged && p.rows.empty())
    note(r.lost, ex.lost,
         post + " (202 at " + std::to_string(std::llround(p.first_ack_ms)) +
             " ms, jobId " + joined(p.job_ids) + ")");
  if (p.rows.size() > 1)
    note(r.duplicated, ex.duplicated,
         post + " (" + std::to_string(p.rows.size()) + " rows, jobIds " +
             row_ids(p) + (p.acknowledged ? "" : "; never acknowledged") + ")");
  if (!p.acknowledged && p.rows.size() == 1)
    note(r.unacknowledged_written, ex.unacknowledged_written,
         post + " (jobId " + row_ids(p) + ", " + sends_text(p) + ")");
  // A send that may have queued a job whose id never reached us leaves
  // the row's id unjudged.
  if (p.rows.size() == 1 && p.all_ids_known && !p.carried(p.rows[0]->job_id))
    note(r.jobid_mismatch, ex.jobid_mismatch,
         post + " (row jobId " + p.rows[0]->job_id + ", answers carried " +
             joined(p.job_ids) + ")");
}

void append_examples(std::string& text, const char* kind, std::int64_t count,
                     const std::vector<std::string>& examples) {
  if (count == 0)
    return;
  text += std::string(kind) + " (" + std::to_string(count);
  text += count > static_cast<std::int64_t>(examples.size())
              ? ", first " + std::to_string(examples.size()) + "):\n"
              : "):\n";
  for (const auto& e : examples)
    text += "  " + e + "\n";
}

} // namespace

check_result check(const std::vector<attempt>& attempts,
                   const std::vector<row>& rows, queue_left queue) {
  check_result r;
  r.queue = queue;
  r.rows = static_cast<std::int64_t>(rows.size());
  auto h = gather(attempts, rows, r.examples, r.foreign);
  r.posts = static_cast<std::int64_t>(h.posts.size());
  for (const auto& p : h.posts)
    judge(p, r);
  return r;
}

std::string summary_line(const check_result& r) {
  return "acknowledged " + std::to_string(r.acknowledged) + ", rows " +
         std::to_string(r.rows) + ", lost " + std::to_string(r.lost) +
         ", duplicated " + std::to_string(r.duplicated) +
         ", unacknowledged-but-written " +
         std::to_string(r.unacknowledged_written);
}

std::string verdict_line(const check_result& r) {
  if (r.passed())
    return "verdict: PASS";
  if (r.acknowledged == 0 && r.guarantee_held())
    return "verdict: FAIL (nothing was acknowledged: the run proves nothing)";
  std::string text = "verdict: FAIL (lost " + std::to_string(r.lost) +
                     ", duplicated " + std::to_string(r.duplicated) +
                     ", job ids differing " + std::to_string(r.jobid_mismatch) +
                     ", left in queue " + std::to_string(r.left_in_queue());
  if (r.foreign != 0)
    text += ", foreign " + std::to_string(r.foreign);
  return text + ")";
}

std::string to_text(const check_result& r) {
  std::string text = summary_line(r) + "\n" + verdict_line(r) + "\n";
  if (r.passed())
    return text;
  const auto& ex = r.examples;
  append_examples(text, "lost", r.lost, ex.lost);
  append_examples(text, "duplicated", r.duplicated, ex.duplicated);
  append_examples(text, "job ids differing", r.jobid_mismatch,
                  ex.jobid_mismatch);
  append_examples(text, "foreign rows", r.foreign, ex.foreign);
  if (r.left_in_queue() != 0)
    text += "left in queue: wait " + std::to_string(r.queue.wait) +
            ", active " + std::to_string(r.queue.active) + ", delayed " +
            std::to_string(r.queue.delayed) + "\n";
  return text;
}

nlohmann::json to_json(const check_result& r) {
  const auto& ex = r.examples;
  return {
      {"posts", r.posts},
      {"acknowledged", r.acknowledged},
      {"rows", r.rows},
      {"lost", r.lost},
      {"duplicated", r.duplicated},
      {"unacknowledged_written", r.unacknowledged_written},
      {"jobid_mismatch", r.jobid_mismatch},
      {"left_in_queue", r.left_in_queue()},
      {"queue",
       {{"wait", r.queue.wait},
        {"active", r.queue.active},
        {"delayed", r.queue.delayed}}},
      {"foreign", r.foreign},
      {"verdict", r.passed() ? "PASS" : "FAIL"},
      {"examples",
       {{"lost", ex.lost},
        {"duplicated", ex.duplicated},
        {"unacknowledged_written", ex.unacknowledged_written},
        {"jobid_mismatch", ex.jobid_mismatch},
        {"foreign", ex.foreign}}},
  };
}

} // namespace postd::chaos
