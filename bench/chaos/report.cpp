#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <istream>
#include <limits>
#include <map>
#include <ostream>
#include <set>
#include <sstream>

namespace postd::chaos {
namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr const char* events_header = "t_ms,action,target,detail";
constexpr const char* samples_header = "t_ms,wait,active,delayed,failed,rows";
// The runner samples every 500 ms: a longer gap means probes failed.
constexpr double max_sample_gap_s = 1.5;
// A failover is started by the runner, not ended: drawn this wide.
constexpr double failover_band_s = 1.0;

const std::set<std::string> fault_actions = {
    "kill", "stop", "restart", "delay", "partition", "faults", "failover"};

std::vector<std::string> split(const std::string& line, std::size_t max) {
  std::vector<std::string> fields(1);
  for (char c : line) {
    if (c == ',' && fields.size() < max)
      fields.emplace_back();
    else if (c != '\r')
      fields.back() += c;
  }
  return fields;
}

// An empty field of samples.csv is a probe that failed: -1, unknown.
std::int64_t to_count(const std::string& field, int line, const char* what) {
  if (field.empty())
    return -1;
  double v = field_number(field, line, what);
  if (v < 0 || v != std::floor(v))
    throw record_error(line, std::string("bad ") + what + " '" + field + "'");
  return static_cast<std::int64_t>(v);
}

std::string fixed(double v, int decimals) {
  if (std::isnan(v))
    return "NaN";
  std::ostringstream s;
  s << std::fixed << std::setprecision(decimals) << v;
  return s.str();
}

// The target as events.csv names it ("postd 1", "all" for faults).
std::string target_name(const fault_event& e) {
  if (e.action == "faults")
    return "all";
  if (e.target == "postd")
    return "postd " + std::to_string(e.instance);
  return e.target;
}

// For each event, the plan's event it applied (same action and target, in
// order), if any.
std::vector<std::optional<std::size_t>>
match_plan(const std::vector<run_event>& events, const scenario& plan) {
  std::vector<bool> used(plan.events.size(), false);
  std::vector<std::optional<std::size_t>> match(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    for (std::size_t p = 0; p < plan.events.size(); ++p) {
      const auto& e = plan.events[p];
      if (!used[p] && e.action == events[i].action &&
          target_name(e) == events[i].target) {
        used[p] = true;
        match[i] = p;
        break;
      }
    }
  }
  return match;
}

bool ends(const run_event& fault, const run_event& later) {
  const std::string& a = later.action;
  if (fault.action == "kill" || fault.action == "restart")
    return a == "start" && later.target == fault.target &&
           later.detail.rfind("FAILED", 0) != 0;
  if (later.action == "heal" && later.target == "all")
    return true; // the end of the load: everything healed
  if (fault.action == "stop")
    return a == "cont" && later.target == fault.target;
  if (fault.action == "delay" || fault.action == "partition")
    return a == "heal" && later.target == fault.target;
  return false;
}

// `for` of a faults event: from the plan, else from the runner's detail.
std::optional<double> faults_for(const run_event& e, const fault_event* p) {
  std::string text;
  if (p != nullptr) {
    auto it = p->faults.find("for");
    if (it == p->faults.end())
      return std::nullopt;
    text = it->second;
  } else {
    auto at = e.detail.find("for=");
    if (at == std::string::npos)
      return std::nullopt;
    text = e.detail.substr(at + 4, e.detail.find(' ', at) - at - 4);
  }
  try {
    return std::stod(text);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Where the band of events[i] ends: where the runner says the fault was
// over (the process serving again, `cont`, `heal`, the heal of everything
// after the load), or by itself (`for=`, a failover), whichever comes
// first; the end of the load when nothing ends it.
void end_band(fault_band& b, const std::vector<run_event>& events,
              std::size_t i, const fault_event* planned, double load_end_s) {
  const run_event& e = events[i];
  b.end_s = std::numeric_limits<double>::infinity();
  if (e.action == "failover") {
    b.end_s = b.start_s + failover_band_s;
    b.ended_by = "failover started";
  } else if (e.action == "faults") {
    if (auto f = faults_for(e, planned)) {
      std::ostringstream text;
      text << "for=" << *f;
      b.end_s = b.start_s + *f;
      b.ended_by = text.str();
    }
  }
  for (std::size_t j = i + 1; j < events.size(); ++j) {
    if (!ends(e, events[j]))
      continue;
    if (double t = events[j].t_ms / 1000; t < b.end_s) {
      b.end_s = t;
      b.ended_by = events[j].name();
    }
    break;
  }
  if (std::isinf(b.end_s)) {
    b.end_s = std::max(b.start_s, load_end_s);
    b.ended_by = "end of load";
  }
}

std::vector<run_event> by_time(std::vector<run_event> events) {
  std::stable_sort(
      events.begin(), events.end(),
      [](const auto& a, const auto& b) { return a.t_ms < b.t_ms; });
  return events;
}

std::string md_cell(std::string s) {
  for (std::size_t at = 0; (at = s.find('|', at)) != std::string::npos; at += 2)
    s.replace(at, 1, "\\|");
  return s;
}

std::string seconds_or(const std::optional<double>& s, const char* none) {
  return s ? fixed(*s, 2) : none;
}

} // namespace

std::vector<run_event> read_events(std::istream& in) {
  std::vector<run_event> events;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.empty() || (number == 1 && line == events_header))
      continue;
    auto f = split(line, 4);
    if (f.size() < 3)
      throw record_error(number, "expected t_ms,action,target,detail");
    events.push_back({field_number(f[0], number, "t_ms"), f[1], f[2],
                      f.size() > 3 ? f[3] : ""});
  }
  return events;
}

std::vector<sample> read_samples(std::istream& in) {
  std::vector<sample> samples;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (number == 1) {
      if (line != samples_header)
        throw record_error(number, std::string("expected the header '") +
                                       samples_header + "'");
      continue;
    }
    if (line.empty())
      continue;
    auto f = split(line, 7);
    if (f.size() != 6)
      throw record_error(number, "expected 6 fields, found " +
                                     std::to_string(f.size()));
    samples.push_back(
        {field_number(f[0], number, "t_ms"), to_count(f[1], number, "wait"),
         to_count(f[2], number, "active"), to_count(f[3], number, "delayed"),
         to_count(f[4], number, "failed"), to_count(f[5], number, "rows")});
  }
  if (number == 0)
    throw record_error(1, "an empty file (no header)");
  return samples;
}

std::vector<fault_band> build_bands(const std::vector<run_event>& events,
                                    const scenario& plan) {
  const auto sorted = by_time(events);
  auto match = match_plan(sorted, plan);
  std::vector<fault_band> bands;
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const auto& e = sorted[i];
    if (!fault_actions.contains(e.action))
      continue;
    const fault_event* planned = match[i] ? &plan.events[*match[i]] : nullptr;
    fault_band b;
    b.start_s = e.t_ms / 1000;
    b.kind = e.action;
    b.label = planned != nullptr ? planned->describe() : e.name();
    if (planned != nullptr)
      b.planned_s = planned->at_s;
    end_band(b, sorted, i, planned, plan.duration_s);
    bands.push_back(std::move(b));
  }
  return bands;
}

std::vector<fault_event> unapplied(const std::vector<run_event>& events,
                                   const scenario& plan) {
  auto match = match_plan(by_time(events), plan);
  std::vector<bool> applied(plan.events.size(), false);
  for (const auto& m : match)
    if (m)
      applied[*m] = true;
  std::vector<fault_event> out;
  for (std::size_t p = 0; p < plan.events.size(); ++p)
    if (!applied[p])
      out.push_back(plan.events[p]);
  return out;
}

std::optional<double> first_ack_after(const std::vector<attempt>& attempts,
                                      double t_ms) {
  std::optional<double> first;
  for (const auto& a : attempts)
    if (a.status == 202 && a.sent_ms >= t_ms &&
        (!first || a.answered_ms < *first))
      first = a.answered_ms;
  if (!first)
    return std::nullopt;
  return (*first - t_ms) / 1000;
}

std::int64_t depth_before(const std::vector<sample>& samples, double start_ms) {
  std::int64_t in_window = -1;
  std::int64_t last = 0;
  for (const auto& s : samples) {
    if (s.t_ms > start_ms || s.wait < 0)
      continue;
    last = s.wait; // samples are in time order
    if (s.t_ms >= start_ms - 2000)
      in_window = std::max(in_window, s.wait);
  }
  return in_window >= 0 ? in_window : last;
}

std::optional<double> queue_back_after(const std::vector<sample>& samples,
                                       double end_ms, std::int64_t depth) {
  for (const auto& s : samples)
    if (s.t_ms >= end_ms && s.wait >= 0 && s.wait <= depth)
      return (s.t_ms - end_ms) / 1000;
  return std::nullopt;
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty())
    return nan;
  auto rank = static_cast<std::size_t>(
      std::ceil(p / 100 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

latency_stats latency_of(std::vector<double> latencies_ms) {
  std::sort(latencies_ms.begin(), latencies_ms.end());
  latency_stats l;
  l.count = latencies_ms.size();
  l.p50 = percentile(latencies_ms, 50);
  l.p90 = percentile(latencies_ms, 90);
  l.p99 = percentile(latencies_ms, 99);
  l.max = latencies_ms.empty() ? nan : latencies_ms.back();
  return l;
}

std::vector<phase> phases(const std::vector<attempt>& attempts,
                          const std::vector<run_event>& events, double end_s) {
  auto make = [&](double start_s, std::string label) {
    phase p;
    p.start_s = start_s;
    p.end_s = end_s;
    p.label = std::move(label);
    return p;
  };
  std::vector<phase> all{
      make(0, events.empty() ? "the whole run" : "before the first fault")};
  for (const auto& e : by_time(events)) {
    double t = std::clamp(e.t_ms / 1000, 0.0, end_s);
    all.back().end_s = t;
    all.push_back(make(t, "after " + e.name() + " at " + fixed(t, 1) + " s"));
  }
  // A send belongs to the last phase starting at or before its due time.
  std::vector<std::vector<double>> latencies(all.size());
  for (const auto& a : attempts) {
    auto it = std::upper_bound(
        all.begin(), all.end(), a.sent_ms / 1000,
        [](double t, const phase& p) { return t < p.start_s; });
    auto i = static_cast<std::size_t>(
        std::max<std::ptrdiff_t>(it - all.begin() - 1, 0));
    auto& p = all[i];
    ++p.sends;
    p.offered += a.number == 1 ? 1 : 0;
    if (a.status == 202) {
      ++p.acked;
      latencies[i].push_back(a.latency_ms());
    }
  }
  std::vector<phase> out;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i].end_s <= all[i].start_s && all[i].sends == 0)
      continue; // two events at one time
    all[i].latency = latency_of(std::move(latencies[i]));
    out.push_back(std::move(all[i]));
  }
  return out;
}

std::vector<second_stats> timeline(const std::vector<attempt>& attempts,
                                   const std::vector<sample>& samples,
                                   double end_s) {
  const auto n = static_cast<std::size_t>(std::max(0.0, std::ceil(end_s)));
  std::vector<second_stats> rows(n);
  std::vector<std::vector<double>> latencies(n);
  auto second = [&](double ms) -> std::optional<std::size_t> {
    if (ms < 0 || ms / 1000 >= static_cast<double>(n))
      return std::nullopt;
    return static_cast<std::size_t>(ms / 1000);
  };
  for (std::size_t s = 0; s < n; ++s)
    rows[s].t_s = static_cast<int>(s);
  for (const auto& a : attempts) {
    auto due = second(a.sent_ms);
    if (due && a.number == 1)
      ++rows[*due].offered;
    if (!a.answered()) {
      if (due)
        ++rows[*due].other_failures;
      continue;
    }
    if (due)
      latencies[*due].push_back(a.latency_ms());
    if (auto at = second(a.answered_ms)) {
      auto& r = rows[*at];
      ++(a.status == 202   ? r.accepted
         : a.status == 503 ? r.unavailable
                           : r.other_failures);
    }
  }
  for (std::size_t s = 0; s < n; ++s) {
    std::sort(latencies[s].begin(), latencies[s].end());
    rows[s].p99_ms = percentile(latencies[s], 99);
    rows[s].queue_wait = rows[s].queue_active = rows[s].queue_delayed = nan;
    rows[s].rows_per_s = nan;
  }
  auto raise = [](double& to, std::int64_t v) {
    if (v >= 0)
      to = std::isnan(to) ? static_cast<double>(v)
                          : std::max(to, static_cast<double>(v));
  };
  for (const auto& s : samples)
    if (auto at = second(s.t_ms)) {
      raise(rows[*at].queue_wait, s.wait);
      raise(rows[*at].queue_active, s.active);
      raise(rows[*at].queue_delayed, s.delayed);
    }
  // Rows between samples grow linearly: rows/s of second s is
  // rows(s + 1) - rows(s), where both fall within the samples. Not across
  // probes that failed (PostgreSQL stopped, partitioned): what was written
  // then is unknown, and a line drawn over it would show rows that were
  // not being written.
  std::vector<std::pair<double, double>> known;
  for (const auto& s : samples)
    if (s.rows >= 0)
      known.emplace_back(s.t_ms / 1000, static_cast<double>(s.rows));
  auto rows_at = [&](double t) {
    if (known.empty() || t < known.front().first || t > known.back().first)
      return nan;
    auto it =
        std::lower_bound(known.begin(), known.end(), t,
                         [](const auto& k, double v) { return k.first < v; });
    if (it->first == t || it == known.begin())
      return it->second;
    auto prev = std::prev(it);
    if (it->first - prev->first > max_sample_gap_s)
      return nan;
    return prev->second + (it->second - prev->second) * (t - prev->first) /
                              (it->first - prev->first);
  };
  for (std::size_t s = 0; s < n; ++s)
    rows[s].rows_per_s =
        rows_at(static_cast<double>(s) + 1) - rows_at(static_cast<double>(s));
  return rows;
}

double run_end_s(const std::vector<attempt>& attempts,
                 const std::vector<sample>& samples, const scenario& plan) {
  double end_ms = plan.duration_s * 1000;
  for (const auto& a : attempts)
    end_ms = std::max({end_ms, a.sent_ms, a.answered_ms});
  for (const auto& s : samples)
    end_ms = std::max(end_ms, s.t_ms);
  return end_ms / 1000;
}

void write_timeline(std::ostream& out, const std::vector<second_stats>& rows) {
  out << "# t_s accepted/s 503/s other_failures/s p99_ms queue_wait rows/s "
         "offered/s queue_active queue_delayed\n";
  for (const auto& r : rows)
    out << r.t_s << ' ' << r.accepted << ' ' << r.unavailable << ' '
        << r.other_failures << ' ' << fixed(r.p99_ms, 2) << ' '
        << fixed(r.queue_wait, 0) << ' ' << fixed(r.rows_per_s, 1) << ' '
        << r.offered << ' ' << fixed(r.queue_active, 0) << ' '
        << fixed(r.queue_delayed, 0) << '\n';
}

void write_bands(std::ostream& out, const std::vector<fault_band>& bands) {
  // The kind's number picks the band's colour in timeline.gp.
  static const std::map<std::string, int> kinds = {
      {"kill", 1},      {"stop", 2},   {"restart", 3}, {"delay", 4},
      {"partition", 5}, {"faults", 6}, {"failover", 7}};
  out << "# start_s end_s label kind\n";
  for (const auto& b : bands) {
    auto it = kinds.find(b.kind);
    std::string label = b.label;
    std::replace(label.begin(), label.end(), '"', '\'');
    out << fixed(b.start_s, 3) << ' ' << fixed(b.end_s, 3) << " \"" << label
        << "\" " << (it == kinds.end() ? 0 : it->second) << '\n';
  }
}

namespace {

std::string count_of(const nlohmann::json& check, const char* key) {
  auto it = check.find(key);
  return it != check.end() && it->is_number() ? it->dump() : "?";
}

void verdict_section(std::ostream& out, const nlohmann::json& check) {
  out << "## Verdict: " << check.value("verdict", std::string{"?"})
      << "\n\nacknowledged " << count_of(check, "acknowledged") << ", rows "
      << count_of(check, "rows") << ", lost " << count_of(check, "lost")
      << ", duplicated " << count_of(check, "duplicated")
      << ", unacknowledged-but-written "
      << count_of(check, "unacknowledged_written") << "; job ids differing "
      << count_of(check, "jobid_mismatch") << ", left in queue "
      << count_of(check, "left_in_queue") << ", foreign "
      << count_of(check, "foreign") << "\n";
  auto examples = check.find("examples");
  if (examples == check.end() || !examples->is_object())
    return;
  for (const auto& [kind, list] : examples->items()) {
    if (!list.is_array() || list.empty())
      continue;
    out << "\n" << kind << ", e.g.:";
    std::size_t shown = 0;
    for (const auto& e : list) {
      if (shown++ == 5)
        break;
      out << " `" << (e.is_string() ? e.get<std::string>() : e.dump()) << "`";
    }
    out << "\n";
  }
}

void faults_section(std::ostream& out, const report_input& in) {
  out << "\n## Faults\n\n";
  auto bands = build_bands(in.events, in.plan);
  auto missing = unapplied(in.events, in.plan);
  if (bands.empty() && missing.empty()) {
    out << "None: a run without faults.\n";
    return;
  }
  out << "| fault | planned (s) | applied (s) | over (s) | over with | "
         "first 202 after it (s) | queue back after it is over (s) |\n"
         "|---|--:|--:|--:|---|--:|--:|\n";
  for (const auto& b : bands) {
    auto depth = depth_before(in.samples, b.start_s * 1000);
    out << "| " << md_cell(b.label) << " | "
        << (b.planned_s ? fixed(*b.planned_s, 1) : "-") << " | "
        << fixed(b.start_s, 2) << " | " << fixed(b.end_s, 2) << " | "
        << md_cell(b.ended_by) << " | "
        << seconds_or(first_ack_after(in.attempts, b.start_s * 1000), "never")
        << " | "
        << seconds_or(queue_back_after(in.samples, b.end_s * 1000, depth),
                      "not within the run")
        << " (to " << depth << ") |\n";
  }
  for (const auto& e : missing)
    if (fault_actions.contains(e.action))
      out << "| " << md_cell(e.describe()) << " | " << fixed(e.at_s, 1)
          << " | not applied | | | | |\n";
  out << "\nFirst 202: from the moment the fault was applied to the first 202 "
         "answering a send due after it. Queue back: from the moment it was "
         "over to the first sample whose `wait` is at or under its depth "
         "before the fault (the highest sampled in the 2 s before; in "
         "brackets).\n";
  for (const auto& e : missing)
    if (!fault_actions.contains(e.action))
      out << "\nPlanned but not in events.csv: `at " << fixed(e.at_s, 1) << " "
          << e.describe() << "`\n";
  // What the runner said it did (signals, pids, the fault API's answers):
  // a fault that did not take shows here first.
  out << "\nWhat the runner did (events.csv):\n\n";
  for (const auto& e : by_time(in.events))
    out << "- " << fixed(e.t_ms / 1000, 2) << " s: " << md_cell(e.name())
        << (e.detail.empty() ? "" : ": " + md_cell(e.detail)) << "\n";
}

void phases_section(std::ostream& out, const report_input& in, double end_s) {
  out << "\n## Latency per phase\n\nSends due in each phase (retries "
         "included); latency of those answered 202, from the time each was "
         "due (an open-loop load: a send waiting for a connection counts).\n"
         "\n| phase | from (s) | to (s) | offered | sends | 202 | p50 (ms) | "
         "p90 (ms) | p99 (ms) | max (ms) |\n"
         "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";
  for (const auto& p : phases(in.attempts, in.events, end_s)) {
    auto ms = [](double v) {
      return std::isnan(v) ? std::string{"-"} : fixed(v, 1);
    };
    out << "| " << md_cell(p.label) << " | " << fixed(p.start_s, 1) << " | "
        << fixed(p.end_s, 1) << " | " << p.offered << " | " << p.sends << " | "
        << p.acked << " | " << ms(p.latency.p50) << " | " << ms(p.latency.p90)
        << " | " << ms(p.latency.p99) << " | " << ms(p.latency.max) << " |\n";
  }
}

void load_section(std::ostream& out, const report_input& in) {
  std::set<std::string> posts;
  std::set<std::string> acked;
  std::map<int, std::int64_t> statuses;
  std::map<std::string, std::int64_t> errors;
  for (const auto& a : in.attempts) {
    posts.insert(a.post);
    if (a.status == 202)
      acked.insert(a.post);
    if (a.answered())
      ++statuses[a.status];
    else
      ++errors[a.error.empty() ? "no answer" : a.error];
  }
  out << "\n## The load\n\n"
      << posts.size() << " posts sent (" << in.plan.rate << "/s for "
      << fixed(in.plan.duration_s, 0) << " s), " << acked.size()
      << " acknowledged, " << in.attempts.size() << " sends. Answers:";
  const char* sep = " ";
  for (const auto& [status, n] : statuses) {
    out << sep << status << ": " << n;
    sep = ", ";
  }
  if (!errors.empty()) {
    out << ". Without an answer:";
    sep = " ";
    for (const auto& [error, n] : errors) {
      out << sep << error << ": " << n;
      sep = ", ";
    }
  }
  out << ".\n";
}

} // namespace

std::string render_report(const report_input& in) {
  std::ostringstream out;
  const double end_s = run_end_s(in.attempts, in.samples, in.plan);
  out << "# Chaos run: " << in.name << "\n\n## Scenario\n\n```\n"
      << in.plan_text
      << (in.plan_text.empty() || in.plan_text.back() == '\n' ? "" : "\n")
      << "```\n\n";
  verdict_section(out, in.check);
  faults_section(out, in);
  phases_section(out, in, end_s);
  load_section(out, in);
  out << "\n![timeline](timeline.png)\n";
  return out.str();
}

} // namespace postd::chaos
