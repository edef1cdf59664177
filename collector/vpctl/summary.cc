#include "collector/vpctl/summary.h"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "collector/vpctl/format.h"
#include "common/gzip.h"
#include "nlohmann/json.hpp"

namespace vllm_profiler::collector::vpctl {
namespace {

using nlohmann::json;

struct Span {
  double ts = 0;
  double dur = 0;
  double children = 0;
  const std::string* name = nullptr;
  const std::string* cat = nullptr;
};

struct Agg {
  uint64_t calls = 0;
  double self_us = 0;
  double total_us = 0;
};

std::string Shorten(const std::string& s, size_t n = 90) {
  return s.size() <= n ? s : s.substr(0, n - 3) + "...";
}

std::string Ms(double us) { return absl::StrFormat("%.3f", us / 1000.0); }

absl::StatusOr<std::string> ReadMaybeGzip(const std::string& path,
                                          uint64_t max_bytes) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "trace is ", HumanBytes(st.st_size), ", too large to summarize"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot open " + path);
  std::string bytes((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
  if (in.bad()) return absl::DataLossError("cannot read " + path);
  if (!LooksGzipped(bytes)) return bytes;  // Plain JSON, as it is.
  absl::StatusOr<std::string> out = Gunzip(bytes, 4 * max_bytes);
  if (out.status().code() == absl::StatusCode::kResourceExhausted) {
    return absl::FailedPreconditionError("trace too large to summarize");
  }
  if (!out.ok()) return absl::DataLossError("cannot read " + path);
  return out;
}

// Adds the durations of `step`'s execute_model / sample_tokens child spans
// (python_function spans inside it on the same thread; `spans` is sorted by
// start).
void SumPhases(const std::vector<Span>& spans, const Span& step,
               double* exec_us, double* sample_us) {
  auto it =
      std::lower_bound(spans.begin(), spans.end(), step.ts,
                       [](const Span& a, double ts) { return a.ts < ts; });
  const double end = step.ts + step.dur + 1e-9;
  for (; it != spans.end() && it->ts <= end; ++it) {
    if (*it->cat != "python_function" || it->ts + it->dur > end) continue;
    if (*it->name == "execute_model") {
      *exec_us += it->dur;
    } else if (*it->name == "sample_tokens") {
      *sample_us += it->dur;
    }
  }
}

// The event array: the document itself, or its traceEvents member.
absl::StatusOr<const json*> TraceEvents(const json& doc) {
  if (doc.is_array()) return &doc;
  if (doc.is_object()) {
    auto it = doc.find("traceEvents");
    if (it != doc.end() && it->is_array()) return &*it;
  }
  return absl::InvalidArgumentError("not a Chrome trace: no traceEvents array");
}

// The complete ("X") events of a trace, grouped per (pid, tid). Names and
// categories are interned: a trace repeats a few hundred of them millions of
// times. Spans point into the pools, so a SpanTable stays where it is built.
struct SpanTable {
  SpanTable() = default;
  SpanTable(const SpanTable&) = delete;
  SpanTable& operator=(const SpanTable&) = delete;

  uint64_t total_events = 0;  // Every object in the array, of any phase.
  std::map<std::pair<int64_t, int64_t>, std::vector<Span>> threads;
  std::vector<std::string> names, cats;
};

int Intern(std::vector<std::string>* pool, std::map<std::string, int>* index,
           const std::string& s) {
  auto [it, inserted] = index->emplace(s, static_cast<int>(pool->size()));
  if (inserted) pool->push_back(s);
  return it->second;
}

void CollectSpans(const json& events, SpanTable* table) {
  std::map<std::string, int> name_index, cat_index;
  // Pool indices first: the pools grow while reading, which would move the
  // strings the spans point at.
  struct Raw {
    std::pair<int64_t, int64_t> key;
    double ts, dur;
    int name, cat;
  };
  std::vector<Raw> raw;
  for (const json& e : events) {
    if (!e.is_object()) continue;
    ++table->total_events;
    auto ph = e.find("ph");
    if (ph == e.end() || !ph->is_string() || *ph != "X") continue;
    auto ts = e.find("ts"), dur = e.find("dur");
    if (ts == e.end() || dur == e.end() || !ts->is_number() ||
        !dur->is_number()) {
      continue;
    }
    auto get_int = [&](const char* k) -> int64_t {
      auto it = e.find(k);
      return it != e.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
    };
    auto get_str = [&](const char* k) -> std::string {
      auto it = e.find(k);
      return it != e.end() && it->is_string() ? it->get<std::string>() : "";
    };
    raw.push_back({{get_int("pid"), get_int("tid")},
                   ts->get<double>(),
                   dur->get<double>(),
                   Intern(&table->names, &name_index, get_str("name")),
                   Intern(&table->cats, &cat_index, get_str("cat"))});
  }
  for (const Raw& r : raw) {
    table->threads[r.key].push_back(
        {r.ts, r.dur, 0, &table->names[r.name], &table->cats[r.cat]});
  }
}

// Sorts one thread's spans by start (the outer one first on a tie) and adds
// each span's duration to its parent's `children` (self = dur - children).
void NestSpans(std::vector<Span>* spans) {
  std::sort(spans->begin(), spans->end(), [](const Span& a, const Span& b) {
    return a.ts != b.ts ? a.ts < b.ts : a.dur > b.dur;
  });
  std::vector<Span*> stack;
  for (Span& s : *spans) {
    while (!stack.empty() &&
           stack.back()->ts + stack.back()->dur <= s.ts + 1e-9) {
      stack.pop_back();
    }
    if (!stack.empty()) stack.back()->children += s.dur;
    stack.push_back(&s);
  }
}

// What the summary reports, summed over all threads.
struct Totals {
  std::map<std::string, Agg> ops, kernels;
  std::vector<double> steps;
  std::string step_name;
  // Per step: time in its execute_model and sample_tokens child spans (the
  // rest of the step is the engine's gap between and around them).
  std::vector<double> exec_us, sample_us;
  bool has_phases = false;
};

void AddThread(const std::vector<Span>& spans, Totals* t) {
  for (const Span& s : spans) {
    if (*s.cat == "cpu_op") {
      Agg& a = t->ops[*s.name];
      ++a.calls;
      a.total_us += s.dur;
      a.self_us += std::max(0.0, s.dur - s.children);
    } else if (*s.cat == "kernel") {
      Agg& a = t->kernels[*s.name];
      ++a.calls;
      a.total_us += s.dur;
    } else if (*s.cat == "step") {
      t->steps.push_back(s.dur);
      t->step_name = *s.name;
      double e = 0, x = 0;
      SumPhases(spans, s, &e, &x);
      t->has_phases = t->has_phases || e > 0 || x > 0;
      t->exec_us.push_back(e);
      t->sample_us.push_back(x);
    }
  }
}

double Sum(const std::vector<double>& v) {
  double sum = 0;
  for (double d : v) sum += d;
  return sum;
}

std::vector<double> Sorted(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// The step line, and the step split into execute_model, sample_tokens and
// the engine's gap when the trace has those spans.
std::string StepSection(const Totals& t) {
  if (t.steps.empty()) return "Steps: none recorded\n";
  const std::vector<double> sorted = Sorted(t.steps);
  const double sum = Sum(t.steps);
  std::string out = absl::StrCat(
      "Steps (", t.step_name, "): ", t.steps.size(), "  mean ",
      Ms(sum / t.steps.size()), " ms  median ", Ms(sorted[sorted.size() / 2]),
      " ms  min ", Ms(sorted.front()), " ms  max ", Ms(sorted.back()), " ms\n");
  if (!t.has_phases) return out;
  std::vector<double> gap(t.steps.size());
  for (size_t i = 0; i < t.steps.size(); ++i) {
    gap[i] = std::max(0.0, t.steps[i] - t.exec_us[i] - t.sample_us[i]);
  }
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"  STEP PART", "MEAN ms", "MEDIAN ms", "MAX ms", "SHARE"});
  const std::pair<const char*, const std::vector<double>*> parts[] = {
      {"execute_model", &t.exec_us},
      {"sample_tokens", &t.sample_us},
      {"gap (engine)", &gap}};
  for (const auto& [label, v] : parts) {
    const std::vector<double> sorted_part = Sorted(*v);
    const double part_sum = Sum(*v);
    rows.push_back(
        {absl::StrCat("  ", label), Ms(part_sum / v->size()),
         Ms(sorted_part[sorted_part.size() / 2]), Ms(sorted_part.back()),
         absl::StrFormat("%.1f%%", sum > 0 ? 100.0 * part_sum / sum : 0.0)});
  }
  return out + Table(rows);
}

// Where each process's operator events came from (the shim, torch's
// profiler standing in for it, or none), from the trace's metadata.
std::string OperatorSources(const json& doc) {
  std::string out;
  auto meta = doc.is_object() ? doc.find("metadata") : doc.end();
  if (meta == doc.end() || !meta->is_object()) return out;
  auto procs = meta->find("processes");
  if (procs == meta->end() || !procs->is_array()) return out;
  for (const json& p : *procs) {
    if (!p.is_object()) continue;
    auto src = p.find("op_source");
    if (src == p.end() || !src->is_string() ||
        src->get_ref<const std::string&>().empty()) {
      continue;
    }
    auto pid = p.find("pid");
    auto name = p.find("process_name");
    absl::StrAppend(
        &out, "Operators of ",
        name != p.end() && name->is_string() ? name->get<std::string>()
                                             : std::string("pid"),
        " (pid ",
        pid != p.end() && pid->is_number_integer() ? pid->get<int64_t>() : 0,
        "): ", src->get<std::string>(), "\n");
  }
  return out;
}

// The `top_n` largest entries of `m` by self time (CPU operators) or total
// time (kernels) as a titled table; nothing when `m` is empty.
std::string TopSection(const std::map<std::string, Agg>& m, bool by_self,
                       const std::string& title, int top_n) {
  if (m.empty()) return "";
  std::vector<std::pair<std::string, Agg>> v(m.begin(), m.end());
  std::sort(v.begin(), v.end(), [&](const auto& a, const auto& b) {
    double x = by_self ? a.second.self_us : a.second.total_us;
    double y = by_self ? b.second.self_us : b.second.total_us;
    return x != y ? x > y : a.first < b.first;
  });
  if (static_cast<int>(v.size()) > top_n) v.resize(top_n);
  std::vector<std::vector<std::string>> rows;
  if (by_self) {
    rows.push_back({"  SELF ms", "TOTAL ms", "CALLS", "NAME"});
    for (const auto& [name, a] : v) {
      rows.push_back({"  " + Ms(a.self_us), Ms(a.total_us),
                      absl::StrCat(a.calls), Shorten(name)});
    }
  } else {
    rows.push_back({"  TOTAL ms", "CALLS", "NAME"});
    for (const auto& [name, a] : v) {
      rows.push_back(
          {"  " + Ms(a.total_us), absl::StrCat(a.calls), Shorten(name)});
    }
  }
  return absl::StrCat(title, "\n", Table(rows));
}

}  // namespace

absl::StatusOr<std::string> SummarizeTraceFile(const std::string& path,
                                               const SummaryOptions& options) {
  absl::StatusOr<std::string> data = ReadMaybeGzip(path, options.max_bytes);
  if (!data.ok()) return data.status();
  return SummarizeTraceJson(*data, options);
}

absl::StatusOr<std::string> SummarizeTraceJson(const std::string& text,
                                               const SummaryOptions& options) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError("not a Chrome trace: invalid JSON");
  }
  absl::StatusOr<const json*> events = TraceEvents(doc);
  if (!events.ok()) return events.status();
  SpanTable table;
  CollectSpans(**events, &table);
  Totals totals;
  for (auto& [key, spans] : table.threads) {
    NestSpans(&spans);
    AddThread(spans, &totals);
  }
  return absl::StrCat(
      table.total_events, " events\n", StepSection(totals),
      OperatorSources(doc),
      TopSection(totals.ops, true,
                 "Top CPU operators by self time:", options.top_n),
      TopSection(totals.kernels, false,
                 "Top GPU kernels by time:", options.top_n));
}

}  // namespace vllm_profiler::collector::vpctl
