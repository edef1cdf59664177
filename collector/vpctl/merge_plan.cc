#include "collector/vpctl/merge_plan.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"

namespace vllm_profiler::collector::vpctl {
namespace {

constexpr char kDot[] = " \xc2\xb7 ";  // " · "

struct RankGroup {
  std::string name;
  int64_t world = 0;
  std::set<int64_t> ranks;
  std::vector<size_t> members;
};

bool Disjoint(const std::set<int64_t>& a, const std::set<int64_t>& b) {
  for (int64_t r : b) {
    if (a.count(r)) return false;
  }
  return true;
}

std::vector<size_t> ByPodName(const std::vector<TraceDoc>& docs) {
  std::vector<size_t> order(docs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return docs[a].fleet.pod < docs[b].fleet.pod;
  });
  return order;
}

// Pods without an instance label whose ranks are part of a larger world:
// grouped in pod order while their ranks are disjoint.
void GroupByRanks(const std::vector<TraceDoc>& docs,
                  std::vector<std::string>& instance_of) {
  std::vector<RankGroup> groups;
  for (size_t t : ByPodName(docs)) {
    if (!instance_of[t].empty()) continue;
    std::set<int64_t> ranks;
    int64_t world = -1;
    for (const TraceProcess& p : docs[t].processes) {
      if (p.rank < 0 || p.world_size <= 0) continue;
      ranks.insert(p.rank);
      world = std::max(world, p.world_size);
    }
    if (ranks.empty() || static_cast<int64_t>(ranks.size()) >= world) continue;
    RankGroup* g = nullptr;
    for (RankGroup& o : groups) {
      if (o.world == world && static_cast<int64_t>(o.ranks.size()) < world &&
          Disjoint(o.ranks, ranks)) {
        g = &o;
        break;
      }
    }
    if (g == nullptr) {
      groups.push_back({docs[t].fleet.pod, world, {}, {}});
      g = &groups.back();
    }
    g->ranks.insert(ranks.begin(), ranks.end());
    g->members.push_back(t);
  }
  for (const RankGroup& g : groups) {
    if (g.members.size() < 2) continue;
    for (size_t t : g.members) {
      instance_of[t] = absl::StrCat(g.name, " (", g.world, " ranks)");
    }
  }
}

// Inputs grouped into units (one pod, or one instance's pods), in order.
std::vector<std::vector<size_t>> Units(const std::vector<TraceDoc>& docs,
                                       const std::vector<std::string>& inst) {
  std::vector<std::vector<size_t>> units;
  std::map<std::string, size_t> by_instance;
  for (size_t t : ByPodName(docs)) {
    if (inst[t].empty()) {
      units.push_back({t});
      continue;
    }
    auto [it, inserted] = by_instance.emplace(inst[t], units.size());
    if (inserted) units.emplace_back();
    units[it->second].push_back(t);
  }
  return units;
}

struct Row {
  size_t trace;
  TraceProcess p;
};

// The metadata's processes, plus pids that only occur in events.
void AddRows(const TraceDoc& d, size_t trace, std::vector<Row>& rows) {
  std::set<int64_t> listed;
  for (const TraceProcess& p : d.processes) {
    if (!listed.insert(p.pid).second) continue;
    rows.push_back({trace, p});
  }
  for (int64_t pid : d.event_pids) {
    if (listed.count(pid)) continue;
    TraceProcess p;
    p.pid = p.real_pid = pid;
    rows.push_back({trace, p});
  }
}

std::string Name(const std::string& pod, const TraceProcess& p) {
  std::string name = absl::StrCat(
      pod, kDot, p.name.empty() ? absl::StrCat("pid ", p.real_pid) : p.name);
  if (p.rank >= 0) absl::StrAppend(&name, kDot, "rank ", p.rank);
  if (!p.name.empty() && p.real_pid != p.pid) {
    absl::StrAppend(&name, kDot, "pid ", p.real_pid);
  }
  return name;
}

std::string Labels(const FleetInfo& f, const std::string& instance) {
  std::string out;
  for (auto [key, value] : {std::pair{"pod", &f.pod},
                            {"namespace", &f.ns},
                            {"node", &f.node},
                            {"instance", &instance}}) {
    if (value->empty()) continue;
    absl::StrAppend(&out, out.empty() ? "" : ",", key, "=", *value);
  }
  return out;
}

int64_t FirstFreePid(const std::vector<TraceDoc>& docs) {
  int64_t max_pid = 0;
  for (const TraceDoc& d : docs) {
    if (!d.event_pids.empty())
      max_pid = std::max(max_pid, *d.event_pids.rbegin());
    for (const TraceProcess& p : d.processes)
      max_pid = std::max(max_pid, p.pid);
  }
  return max_pid + 1;
}

}  // namespace

MergePlan PlanMerge(const std::vector<TraceDoc>& docs) {
  MergePlan plan;
  plan.instance_of.resize(docs.size());
  for (size_t t = 0; t < docs.size(); ++t) {
    plan.instance_of[t] = docs[t].fleet.instance;
  }
  GroupByRanks(docs, plan.instance_of);
  std::set<int64_t> used;
  int64_t next_free = FirstFreePid(docs);
  for (const std::vector<size_t>& unit : Units(docs, plan.instance_of)) {
    std::vector<Row> rows;
    for (size_t t : unit) AddRows(docs[t], t, rows);
    auto key = [&](const Row& r) {
      return std::make_tuple(r.p.rank < 0, r.p.rank, docs[r.trace].fleet.pod,
                             r.trace, r.p.pid);
    };
    std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
      return key(a) < key(b);
    });
    for (const Row& r : rows) {
      PlannedProcess p;
      p.trace = r.trace;
      p.old_pid = r.p.pid;
      p.new_pid = used.count(r.p.pid) ? next_free++ : r.p.pid;
      used.insert(p.new_pid);
      p.name = Name(docs[r.trace].fleet.pod, r.p);
      p.rank = r.p.rank;
      p.sort_index = static_cast<int64_t>(plan.processes.size());
      p.labels = Labels(docs[r.trace].fleet, plan.instance_of[r.trace]);
      plan.processes.push_back(std::move(p));
    }
  }
  return plan;
}

}  // namespace vllm_profiler::collector::vpctl
