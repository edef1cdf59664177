#include "collector/vpctl/merge.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace vllm_profiler::collector::vpctl {
namespace {

using nlohmann::json;

struct Proc {
  int64_t pid;
  std::string name;
  int64_t rank = -1;
  int64_t world = -1;
};

// A trace shaped as the collector writes it: per process a name event, a
// step at ts 1 µs lasting 10 µs and a flow pair with id 7.
json Trace(const std::string& pod, int64_t base_ns, const std::string& group,
           const std::vector<Proc>& procs, const std::string& node = "") {
  json events = json::array();
  json meta_procs = json::array();
  for (const Proc& p : procs) {
    events.push_back({{"ph", "M"},
                      {"name", "process_name"},
                      {"pid", p.pid},
                      {"args", {{"name", p.name + " · pod " + pod}}}});
    events.push_back({{"ph", "X"},
                      {"cat", "step"},
                      {"name", "step"},
                      {"pid", p.pid},
                      {"tid", 1},
                      {"ts", 1.0},
                      {"dur", 10.0}});
    events.push_back(
        {{"ph", "s"}, {"id", 7}, {"pid", p.pid}, {"tid", 1}, {"ts", 2.0}});
    events.push_back(
        {{"ph", "f"}, {"id", 7}, {"pid", p.pid}, {"tid", 2}, {"ts", 3.0}});
    meta_procs.push_back({{"pid", p.pid},
                          {"process_name", p.name},
                          {"rank", p.rank},
                          {"world_size", p.world},
                          {"pod_name", pod},
                          {"pod_namespace", "ns"},
                          {"node_name", node}});
  }
  json config = {{"num_steps", 20}};
  if (!group.empty()) config["group_id"] = group;
  return {{"traceEvents", events},
          {"metadata",
           {{"capture_id", "cmd-" + pod},
            {"config", config},
            {"base_time_unix_ns", base_ns},
            {"complete", true},
            {"processes", meta_procs}}}};
}

constexpr int64_t kBase = 1'700'000'000'000'000'000;

json MergeOk(const std::vector<json>& traces, bool force = false) {
  std::vector<MergeInput> in;
  for (size_t i = 0; i < traces.size(); ++i) {
    in.push_back({"t" + std::to_string(i) + ".json", traces[i].dump()});
  }
  MergeOptions o;
  o.force = force;
  absl::StatusOr<std::string> out = MergeTraceJson(in, o);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? json::parse(*out) : json();
}

absl::Status MergeError(const std::vector<std::string>& texts) {
  std::vector<MergeInput> in;
  for (size_t i = 0; i < texts.size(); ++i) {
    in.push_back({"t" + std::to_string(i) + ".json", texts[i]});
  }
  return MergeTraceJson(in, MergeOptions()).status();
}

// Process names in sort order, and the events of each merged pid.
std::vector<std::string> Names(const json& merged) {
  std::map<int64_t, std::string> by_index;
  std::map<int64_t, std::string> names;
  for (const json& e : merged["traceEvents"]) {
    if (e["ph"] != "M") continue;
    if (e["name"] == "process_name") names[e["pid"]] = e["args"]["name"];
  }
  for (const json& e : merged["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "process_sort_index") {
      by_index[e["args"]["sort_index"]] = names[e["pid"]];
    }
  }
  std::vector<std::string> out;
  for (const auto& [i, n] : by_index) out.push_back(n);
  return out;
}

TEST(MergeTest, CollidingPidsStayDistinctNamedAndOrderedByPodThenRank) {
  json b = Trace("vllm-b", kBase, "g1",
                 {{10, "VllmWorker-1", 1, 2}, {20, "VllmWorker-0", 0, 2}});
  json a = Trace("vllm-a", kBase, "g1",
                 {{10, "VllmWorker-0", 0, 2},
                  {11, "EngineCore_DP0"},
                  {20, "VllmWorker-1", 1, 2}});
  json m = MergeOk({b, a});
  EXPECT_EQ(
      Names(m),
      (std::vector<std::string>{
          "vllm-a · VllmWorker-0 · rank 0", "vllm-a · VllmWorker-1 · rank 1",
          "vllm-a · EngineCore_DP0", "vllm-b · VllmWorker-0 · rank 0",
          "vllm-b · VllmWorker-1 · rank 1"}));
  std::set<int64_t> pids;
  for (const json& p : m["metadata"]["processes"]) {
    pids.insert(p["pid"].get<int64_t>());
  }
  EXPECT_EQ(pids, (std::set<int64_t>{10, 11, 20, 21, 22}));
  // Every step kept its (new) pid: five processes, five steps.
  std::set<int64_t> step_pids;
  for (const json& e : m["traceEvents"]) {
    if (e["ph"] == "X") step_pids.insert(e["pid"].get<int64_t>());
  }
  EXPECT_EQ(step_pids, pids);
  // The first pod keeps its pids; the pid map says where the second's went.
  const json& pods = m["metadata"]["pods"];
  ASSERT_EQ(pods.size(), 2u);
  EXPECT_EQ(pods[0]["pod"], "vllm-b");
  EXPECT_EQ(pods[1]["pids"], (json{{"10", 10}, {"11", 11}, {"20", 20}}));
  EXPECT_EQ(pods[0]["pids"], (json{{"10", 22}, {"20", 21}}));
  EXPECT_EQ(m["metadata"]["capture_group"], "g1");
}

TEST(MergeTest, FlowIdsOfDifferentPodsDoNotCollide) {
  json m = MergeOk(
      {Trace("a", kBase, "", {{1, "p"}}), Trace("b", kBase, "", {{1, "p"}})});
  std::map<int64_t, std::set<uint64_t>> ids_by_pid;
  for (const json& e : m["traceEvents"]) {
    if (e["ph"] == "s" || e["ph"] == "f") {
      ids_by_pid[e["pid"]].insert(e["id"].get<uint64_t>());
    }
  }
  ASSERT_EQ(ids_by_pid.size(), 2u);
  EXPECT_EQ(ids_by_pid[1].size(), 1u);  // s and f still pair up...
  EXPECT_EQ(ids_by_pid[2].size(), 1u);
  EXPECT_NE(*ids_by_pid[1].begin(), *ids_by_pid[2].begin());  // ...apart.
}

TEST(MergeTest, OneTimelineWithClockOffsetsRecorded) {
  json a = Trace("a", kBase, "g", {{1, "p"}}, "node-1");
  json b = Trace("b", kBase + 3'000'000, "g", {{1, "p"}}, "node-2");
  // b's node clock runs 1 ms ahead of vpctl's: its events are 2 ms after a's.
  b["metadata"]["fleet"] = {{"pod", "b"},
                            {"node", "node-2"},
                            {"clock_offset_ns", 1'000'000},
                            {"clock_uncertainty_ns", 150'000}};
  json m = MergeOk({a, b});
  std::map<int64_t, double> step_ts;
  for (const json& e : m["traceEvents"]) {
    if (e["ph"] == "X") step_ts[e["pid"]] = e["ts"];
  }
  EXPECT_DOUBLE_EQ(step_ts[1], 1.0);
  EXPECT_DOUBLE_EQ(step_ts[2], 2001.0);
  EXPECT_EQ(m["metadata"]["base_time_unix_ns"], kBase);
  const json& pods = m["metadata"]["pods"];
  EXPECT_EQ(pods[0]["node"], "node-1");
  EXPECT_FALSE(pods[0].contains("clock_offset_ns"));
  EXPECT_EQ(pods[1]["node"], "node-2");
  EXPECT_EQ(pods[1]["clock_offset_ns"], 1'000'000);
  EXPECT_EQ(pods[1]["clock_uncertainty_ns"], 150'000);
  EXPECT_EQ(pods[1]["metadata"]["capture_id"], "cmd-b");
}

TEST(MergeTest, LeaderWorkerSetRanksAreOneBlockInRankOrder) {
  // lws-0 holds ranks 0 and 2, lws-0-1 ranks 1 and 3; "alpha" is alone.
  json leader = Trace("lws-0", kBase, "g",
                      {{5, "VllmWorker-2", 2, 4}, {6, "VllmWorker-0", 0, 4}});
  json worker = Trace("lws-0-1", kBase, "g",
                      {{5, "VllmWorker-1", 1, 4}, {6, "VllmWorker-3", 3, 4}});
  json alpha = Trace("zeta", kBase, "g", {{9, "VllmWorker-0", 0, 1}});
  for (json* t : {&leader, &worker}) {
    (*t)["metadata"]["fleet"] = {{"instance", "lws/0"}};
  }
  json m = MergeOk({alpha, worker, leader});
  EXPECT_EQ(
      Names(m),
      (std::vector<std::string>{
          "lws-0 · VllmWorker-0 · rank 0", "lws-0-1 · VllmWorker-1 · rank 1",
          "lws-0 · VllmWorker-2 · rank 2", "lws-0-1 · VllmWorker-3 · rank 3",
          "zeta · VllmWorker-0 · rank 0"}));
  EXPECT_EQ(m["metadata"]["processes"][0]["instance"], "lws/0");
  EXPECT_EQ(m["metadata"]["processes"][4]["instance"], "");
}

TEST(MergeTest, RanksOfOneWorldAcrossPodsAreGroupedWithoutLabels) {
  json p0 = Trace("mn-a", kBase, "g",
                  {{5, "VllmWorker-0", 0, 4}, {6, "VllmWorker-1", 1, 4}});
  json p1 = Trace("mn-b", kBase, "g",
                  {{5, "VllmWorker-2", 2, 4}, {6, "VllmWorker-3", 3, 4}});
  json solo = Trace("mn-aa", kBase, "g", {{7, "VllmWorker-0", 0, 1}});
  json m = MergeOk({p1, solo, p0});
  EXPECT_EQ(Names(m),
            (std::vector<std::string>{
                "mn-a · VllmWorker-0 · rank 0", "mn-a · VllmWorker-1 · rank 1",
                "mn-b · VllmWorker-2 · rank 2", "mn-b · VllmWorker-3 · rank 3",
                "mn-aa · VllmWorker-0 · rank 0"}));
  EXPECT_EQ(m["metadata"]["processes"][2]["instance"], "mn-a (4 ranks)");
}

TEST(MergeTest, DifferentCapturesAreRefusedUnlessForced) {
  json a = Trace("a", kBase, "fleet-1", {{1, "p"}});
  json b = Trace("b", kBase, "fleet-2", {{1, "p"}});
  EXPECT_EQ(MergeError({a.dump(), b.dump()}).message(),
            "t0.json and t1.json are not from one capture (group 'fleet-1' "
            "vs 'fleet-2'); --force merges them anyway");
  EXPECT_TRUE(MergeOk({a, b}, /*force=*/true)["metadata"]["forced"]);

  // Without groups: traces one minute apart do not overlap.
  json c = Trace("c", kBase, "", {{1, "p"}});
  json d = Trace("d", kBase + 60'000'000'000, "", {{1, "p"}});
  EXPECT_EQ(MergeError({c.dump(), d.dump()}).message(),
            "t0.json (22:13:20.000 to 22:13:20.000 UTC) and t1.json "
            "(22:14:20.000 to 22:14:20.000 UTC) do not overlap in time: not "
            "one capture; --force merges them anyway");
}

TEST(MergeTest, BadInputIsAClearError) {
  const std::string ok = Trace("a", kBase, "", {{1, "p"}}).dump();
  EXPECT_EQ(MergeError({ok}).message(), "merge needs at least two traces");
  EXPECT_EQ(MergeError({ok, "{\"traceEvents\":["}).message(),
            "t1.json: not a vllm-profiler trace (invalid JSON)");
  EXPECT_EQ(MergeError({ok, "[]"}).message(),
            "t1.json: not a vllm-profiler trace (not a JSON object)");
  EXPECT_EQ(MergeError({ok, R"({"traceEvents":[]})"}).message(),
            "t1.json: not a vllm-profiler trace (no metadata)");
  EXPECT_EQ(
      MergeError(
          {ok, R"({"traceEvents":[],"metadata":{"base_time_unix_ns":"x"}})"})
          .message(),
      "t1.json: not a vllm-profiler trace (no metadata.base_time_unix_ns)");
  json bad = Trace("b", kBase, "", {{1, "p"}});
  bad["traceEvents"][1]["pid"] = "one";
  EXPECT_EQ(MergeError({ok, bad.dump()}).message(),
            "t1.json: not a vllm-profiler trace (event 1: pid is not a "
            "32-bit integer)");
  bad = Trace("b", kBase, "", {{1, "p"}});
  bad["traceEvents"][1]["ts"] = 1e300;
  EXPECT_EQ(MergeError({ok, bad.dump()}).message(),
            "t1.json: not a vllm-profiler trace (event 1: ts is not a time in "
            "microseconds)");
  bad = Trace("b", kBase, "", {{1, "p"}});
  bad["traceEvents"][0]["ph"] = 5;  // Wrong types elsewhere are carried.
  bad["metadata"]["processes"][0]["rank"] = "zero";
  EXPECT_TRUE(MergeError({ok, bad.dump()}).ok());
  bad["metadata"]["fleet"] = {{"clock_offset_ns", 1}};
  EXPECT_EQ(MergeError({ok, bad.dump()}).message(),
            "t1.json: not a vllm-profiler trace (metadata.fleet."
            "clock_offset_ns is out of range)");
}

class MergeFilesTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) {
    return std::string(::getenv("TEST_TMPDIR")) + "/" + name;
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(Path(name)) << text;
    return Path(name);
  }
};

TEST_F(MergeFilesTest, WritesOnlyOnSuccessAndAnnotationsCarryOver) {
  const std::string a =
      Write("a.json", Trace("a", kBase, "g", {{1, "p"}}).dump());
  const std::string b =
      Write("b.json", Trace("b", kBase, "g", {{1, "p"}}).dump());
  const std::string junk = Write("junk.json", "hello");
  const std::string out = Path("merged.json");
  absl::StatusOr<int> n = MergeTraceFiles({a, junk}, out, MergeOptions());
  EXPECT_EQ(n.status().message(),
            junk + ": not a vllm-profiler trace (invalid JSON)");
  EXPECT_NE(::access(out.c_str(), F_OK), 0);
  n = MergeTraceFiles({a, Path("missing.json")}, out, MergeOptions());
  EXPECT_FALSE(n.ok());
  EXPECT_NE(::access(out.c_str(), F_OK), 0);

  FleetInfo info;
  info.pod = "pod-b";
  info.node = "node-9";
  info.clock_offset_ns = -2000;
  info.clock_uncertainty_ns = 300;
  ASSERT_TRUE(AnnotateTraceFile(b, info).ok());
  n = MergeTraceFiles({a, b}, out, MergeOptions());
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2);
  std::ifstream in(out);
  json m = json::parse(in);
  EXPECT_EQ(m["metadata"]["pods"][1]["pod"], "pod-b");
  EXPECT_EQ(m["metadata"]["pods"][1]["node"], "node-9");
  EXPECT_EQ(m["metadata"]["pods"][1]["clock_offset_ns"], -2000);
  EXPECT_EQ(Names(m), (std::vector<std::string>{"a · p", "pod-b · p"}));
}

}  // namespace
}  // namespace vllm_profiler::collector::vpctl
