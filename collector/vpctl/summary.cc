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

}  // namespace

absl::StatusOr<std::string> SummarizeTraceFile(const std::string& path,
                                               const SummaryOptions& options) {
  absl::StatusOr<std::string> data = ReadMaybeGzip(path, options.max_bytes);
  if (!data.ok()) return data.status();
  return SummarizeTraceJson(*data, options);
}

absl::StatusOr<std::string> SummarizeTraceJson(const std::string& text,
                                               const SummaryOptions& options) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError("not a Chrome trace: invalid JSON");
  }
  const json* events = nullptr;
  if (doc.is_array()) {
    events = &doc;
  } else if (doc.is_object() && doc.contains("traceEvents") &&
             doc["traceEvents"].is_array()) {
    events = &doc["traceEvents"];
  } else {
    return absl::InvalidArgumentError(
        "not a Chrome trace: no traceEvents array");
  }

  // Complete events per thread.
  std::map<std::pair<int64_t, int64_t>, std::vector<Span>> threads;
  std::vector<std::string> names, cats;  // Own the strings spans point at.
  std::map<std::string, int> name_index, cat_index;
  auto intern = [](std::vector<std::string>* pool,
                   std::map<std::string, int>* index, const std::string& s) {
    auto [it, inserted] = index->emplace(s, static_cast<int>(pool->size()));
    if (inserted) pool->push_back(s);
    return it->second;
  };
  struct Raw {
    std::pair<int64_t, int64_t> key;
    double ts, dur;
    int name, cat;
  };
  std::vector<Raw> raw;
  uint64_t total_events = 0;
  for (const json& e : *events) {
    if (!e.is_object()) continue;
    ++total_events;
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
                   intern(&names, &name_index, get_str("name")),
                   intern(&cats, &cat_index, get_str("cat"))});
  }
  for (const Raw& r : raw) {
    threads[r.key].push_back({r.ts, r.dur, 0, &names[r.name], &cats[r.cat]});
  }

  std::map<std::string, Agg> ops, kernels;
  std::vector<double> steps;
  std::string step_name;
  // Per step: time in its execute_model and sample_tokens child spans (the
  // rest of the step is the engine's gap between and around them).
  std::vector<double> exec_us, sample_us;
  bool has_phases = false;
  for (auto& [key, spans] : threads) {
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
      return a.ts != b.ts ? a.ts < b.ts : a.dur > b.dur;
    });
    std::vector<Span*> stack;
    for (Span& s : spans) {
      while (!stack.empty() &&
             stack.back()->ts + stack.back()->dur <= s.ts + 1e-9) {
        stack.pop_back();
      }
      if (!stack.empty()) stack.back()->children += s.dur;
      stack.push_back(&s);
    }
    for (const Span& s : spans) {
      if (*s.cat == "cpu_op") {
        Agg& a = ops[*s.name];
        ++a.calls;
        a.total_us += s.dur;
        a.self_us += std::max(0.0, s.dur - s.children);
      } else if (*s.cat == "kernel") {
        Agg& a = kernels[*s.name];
        ++a.calls;
        a.total_us += s.dur;
      } else if (*s.cat == "step") {
        steps.push_back(s.dur);
        step_name = *s.name;
        double e = 0, x = 0;
        SumPhases(spans, s, &e, &x);
        has_phases = has_phases || e > 0 || x > 0;
        exec_us.push_back(e);
        sample_us.push_back(x);
      }
    }
  }

  std::string out = absl::StrCat(total_events, " events\n");
  if (!steps.empty()) {
    std::vector<double> sorted = steps;
    std::sort(sorted.begin(), sorted.end());
    double sum = 0;
    for (double d : steps) sum += d;
    absl::StrAppend(&out, "Steps (", step_name, "): ", steps.size(), "  mean ",
                    Ms(sum / steps.size()), " ms  median ",
                    Ms(sorted[sorted.size() / 2]), " ms  min ",
                    Ms(sorted.front()), " ms  max ", Ms(sorted.back()),
                    " ms\n");
    if (has_phases) {
      std::vector<double> gap(steps.size());
      for (size_t i = 0; i < steps.size(); ++i) {
        gap[i] = std::max(0.0, steps[i] - exec_us[i] - sample_us[i]);
      }
      std::vector<std::vector<std::string>> rows;
      rows.push_back(
          {"  STEP PART", "MEAN ms", "MEDIAN ms", "MAX ms", "SHARE"});
      const std::pair<const char*, const std::vector<double>*> parts[] = {
          {"execute_model", &exec_us},
          {"sample_tokens", &sample_us},
          {"gap (engine)", &gap}};
      for (const auto& [label, v] : parts) {
        std::vector<double> sorted_part = *v;
        std::sort(sorted_part.begin(), sorted_part.end());
        double part_sum = 0;
        for (double d : *v) part_sum += d;
        rows.push_back({absl::StrCat("  ", label), Ms(part_sum / v->size()),
                        Ms(sorted_part[sorted_part.size() / 2]),
                        Ms(sorted_part.back()),
                        absl::StrFormat(
                            "%.1f%%", sum > 0 ? 100.0 * part_sum / sum : 0.0)});
      }
      absl::StrAppend(&out, Table(rows));
    }
  } else {
    out += "Steps: none recorded\n";
  }
  auto top = [&](const std::map<std::string, Agg>& m, bool by_self,
                 const std::string& title) {
    if (m.empty()) return;
    std::vector<std::pair<std::string, Agg>> v(m.begin(), m.end());
    std::sort(v.begin(), v.end(), [&](const auto& a, const auto& b) {
      double x = by_self ? a.second.self_us : a.second.total_us;
      double y = by_self ? b.second.self_us : b.second.total_us;
      return x != y ? x > y : a.first < b.first;
    });
    if (static_cast<int>(v.size()) > options.top_n) v.resize(options.top_n);
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
    absl::StrAppend(&out, title, "\n", Table(rows));
  };
  // Where each process's operator events came from (the shim, torch's
  // profiler standing in for it, or none), from the trace's metadata.
  auto meta = doc.is_object() ? doc.find("metadata") : doc.end();
  if (meta != doc.end() && meta->is_object()) {
    auto procs = meta->find("processes");
    if (procs != meta->end() && procs->is_array()) {
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
            pid != p.end() && pid->is_number_integer() ? pid->get<int64_t>()
                                                       : 0,
            "): ", src->get<std::string>(), "\n");
      }
    }
  }
  top(ops, true, "Top CPU operators by self time:");
  top(kernels, false, "Top GPU kernels by time:");
  return out;
}

}  // namespace vllm_profiler::collector::vpctl
