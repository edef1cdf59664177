#include "collector/trace_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/filesystem_testing.h"
#include "gtest/gtest.h"

namespace vllm_profiler::collector {
namespace {

std::string NewDir(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

// Writes `bytes` bytes into a new temp file and commits it.
v1::TraceInfo Add(TraceStore& store, std::vector<int64_t> pids,
                  size_t bytes = 10, const std::string& requested = "") {
  auto temp = store.CreateTempFile();
  EXPECT_TRUE(temp.ok()) << temp.status();
  EXPECT_TRUE(temp->file->Append(std::string(bytes, 'x')).ok());
  EXPECT_TRUE(temp->file->Close().ok());
  TraceStore::CommitRequest req;
  req.capture_id = "cap";
  req.pids = pids;
  req.requested_name = requested;
  req.complete = true;
  req.num_events = 3;
  auto info = store.Commit(temp->path, req);
  EXPECT_TRUE(info.ok()) << info.status();
  return *info;
}

TEST(TraceStore, Naming) {
  TraceStore::Options o;
  o.dir = NewDir("naming");
  TraceStore store(o, Filesystem::Default());
  ASSERT_TRUE(store.Init().ok());
  EXPECT_EQ(Add(store, {1234}).file_name(), "trace1234.json");
  EXPECT_EQ(Add(store, {1234}).id(), "trace1234-2");
  EXPECT_EQ(Add(store, {1234}).id(), "trace1234-3");
  EXPECT_EQ(Add(store, {30, 10, 20}).id(), "trace10_20_30");
  EXPECT_EQ(Add(store, {6, 5, 4, 3, 2, 1}).id(), "trace1_2_3_4_and2more");
  EXPECT_EQ(Add(store, {1}, 10, "/tmp/out/my trace.json").id(), "my_trace");
  EXPECT_EQ(Add(store, {1}, 10, "my_trace.json.gz").id(), "my_trace-2");
  EXPECT_EQ(Add(store, {1}, 10, "../../etc/passwd").id(), "passwd");
  EXPECT_EQ(Add(store, {1}, 10, "..").id(), "_.");
  EXPECT_EQ(Add(store, {7}, 10, "/").id(), "trace7");
  struct stat st;
  EXPECT_EQ(stat((o.dir + "/trace10_20_30.json").c_str(), &st), 0);
  EXPECT_EQ(stat((o.dir + "/.trace10_20_30.meta").c_str(), &st), 0);
}

TEST(TraceStore, IdValidation) {
  EXPECT_TRUE(TraceStore::IsValidId("trace1234"));
  EXPECT_TRUE(TraceStore::IsValidId("trace1_2-3.x"));
  EXPECT_FALSE(TraceStore::IsValidId(""));
  EXPECT_FALSE(TraceStore::IsValidId(".."));
  EXPECT_FALSE(TraceStore::IsValidId("../../etc/passwd"));
  EXPECT_FALSE(TraceStore::IsValidId("a/b"));
  EXPECT_FALSE(TraceStore::IsValidId(".trace1.meta"));
  EXPECT_FALSE(TraceStore::IsValidId("a..b"));
  EXPECT_FALSE(TraceStore::IsValidId(std::string("a\0b", 3)));
  EXPECT_FALSE(TraceStore::IsValidId(std::string(201, 'a')));
}

TEST(TraceStore, LookupNeverLeavesTheDirectory) {
  TraceStore::Options o;
  o.dir = NewDir("lookup");
  TraceStore store(o, Filesystem::Default());
  ASSERT_TRUE(store.Init().ok());
  Add(store, {1});
  v1::TraceInfo info;
  EXPECT_TRUE(store.Open("trace1", &info).ok());
  EXPECT_EQ(info.size_bytes(), 10u);
  for (const char* id : {"../lookup/trace1", "/etc/passwd", ".trace1.meta",
                         "trace1.json", "trace2", "..", "."}) {
    auto f = store.Open(id, &info);
    EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound) << id;
  }
  EXPECT_EQ(std::string(store.Find("nope").status().message()),
            "no trace with id \"nope\"");
}

TEST(TraceStore, RetentionByCountAndBytesOldestFirst) {
  TraceStore::Options o;
  o.dir = NewDir("retention");
  o.max_traces = 3;
  o.max_bytes = 1000;
  TraceStore store(o, Filesystem::Default());
  ASSERT_TRUE(store.Init().ok());
  for (int pid = 1; pid <= 5; ++pid) Add(store, {pid}, 100);
  std::vector<v1::TraceInfo> list = store.List();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].id(), "trace5");  // Newest first.
  EXPECT_EQ(list[2].id(), "trace3");
  struct stat st;
  EXPECT_NE(stat((o.dir + "/trace1.json").c_str(), &st), 0);
  EXPECT_NE(stat((o.dir + "/.trace1.meta").c_str(), &st), 0);
  // A big trace evicts by bytes, but is itself kept even when over.
  Add(store, {6}, 850);
  list = store.List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id(), "trace6");
  EXPECT_EQ(list[1].id(), "trace5");
  Add(store, {7}, 5000);
  list = store.List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].id(), "trace7");
  EXPECT_EQ(store.Disk().bytes_used(), 5000u);
}

TEST(TraceStore, InitReindexesAndRemovesTempFiles) {
  TraceStore::Options o;
  o.dir = NewDir("reindex");
  {
    TraceStore store(o, Filesystem::Default());
    ASSERT_TRUE(store.Init().ok());
    Add(store, {1});
    Add(store, {2, 3});
    auto temp = store.CreateTempFile();  // Left behind, as after a crash.
    ASSERT_TRUE(temp.ok());
  }
  TraceStore store(o, Filesystem::Default());
  ASSERT_TRUE(store.Init().ok());
  std::vector<v1::TraceInfo> list = store.List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id(), "trace2_3");
  EXPECT_EQ(list[0].pids_size(), 2);
  EXPECT_EQ(list[0].capture_id(), "cap");
  EXPECT_TRUE(list[0].complete());
  EXPECT_EQ(list[0].num_events(), 3u);
  auto names = Filesystem::Default()->ListDir(o.dir);
  ASSERT_TRUE(names.ok());
  for (const std::string& n : *names) EXPECT_NE(n.find("inprogress"), 0u) << n;
  EXPECT_TRUE(store.Delete("trace1").ok());
  EXPECT_EQ(store.Delete("trace1").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store.List().size(), 1u);
}

// A collector killed mid-capture leaves a temp file cut anywhere, even
// inside a string holding braces and escaped quotes.
TEST(TraceStore, PartialTraceIsRecoveredAtStartAsIncomplete) {
  TraceStore::Options o;
  o.dir = NewDir("recover");
  const std::string events =
      "{\"traceEvents\":[{\"ph\":\"X\",\"name\":\"a}\\\"]{\",\"ts\":1,"
      "\"args\":{\"k\":[1,{}]}},{\"ph\":\"i\",\"name\":\"b\",\"ts\":2}";
  {
    TraceStore store(o, Filesystem::Default());
    ASSERT_TRUE(store.Init().ok());
    auto temp = store.CreateTempFile();
    ASSERT_TRUE(temp.ok());
    ASSERT_TRUE(
        temp->file->Append(events + ",{\"ph\":\"X\",\"name\":\"cut}her").ok());
    ASSERT_TRUE(temp->file->Close().ok());
    // A gzip one cannot be cut cleanly: removed, with a log line.
    auto gz = store.CreateTempFile();
    ASSERT_TRUE(gz.ok());
    ASSERT_TRUE(gz->file->Append("\x1f\x8b\x08\x00 partial gzip").ok());
    ASSERT_TRUE(gz->file->Close().ok());
  }
  TraceStore store(o, Filesystem::Default());
  ASSERT_TRUE(store.Init().ok());
  std::vector<v1::TraceInfo> list = store.List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].id(), "recovered");
  EXPECT_FALSE(list[0].complete());
  EXPECT_EQ(list[0].num_events(), 2u);
  EXPECT_EQ(list[0].error(),
            "collector stopped while writing (recovered at start)");
  v1::TraceInfo info;
  auto file = store.Open("recovered", &info);
  ASSERT_TRUE(file.ok()) << file.status();
  std::string text;
  char buf[4096];
  while (true) {
    auto n = (*file)->Read(buf, sizeof(buf));
    ASSERT_TRUE(n.ok());
    if (*n == 0) break;
    text.append(buf, *n);
  }
  EXPECT_EQ(text.substr(0, events.size()), events);
  EXPECT_EQ(text.substr(events.size()),
            "],\"displayTimeUnit\":\"ns\",\"metadata\":{\"producer\":"
            "\"vllm-profiler collector (recovered at start)\",\"complete\":"
            "false,\"events_written\":2,\"errors\":[\"collector stopped "
            "while writing (recovered at start)\"],\"recovered_from\":\"" +
                text.substr(text.find(".inprogress-"),
                            text.find(".tmp") + 4 - text.find(".inprogress-")) +
                "\",\"recovered_bytes_dropped\":26}}\n");
  auto names = Filesystem::Default()->ListDir(o.dir);
  ASSERT_TRUE(names.ok());
  for (const std::string& n : *names) EXPECT_NE(n.find("inprogress"), 0u) << n;
  // Listed again after another restart, from its sidecar.
  TraceStore again(o, Filesystem::Default());
  ASSERT_TRUE(again.Init().ok());
  ASSERT_EQ(again.List().size(), 1u);
  EXPECT_EQ(again.List()[0].error(),
            "collector stopped while writing (recovered at start)");
}

TEST(TraceStore, SymlinksAreNeverServed) {
  TraceStore::Options o;
  o.dir = NewDir("symlinks");
  const std::string secret = NewDir("secret.txt");
  {
    TraceStore store(o, Filesystem::Default());
    ASSERT_TRUE(store.Init().ok());
    Add(store, {1});
  }
  FILE* f = std::fopen(secret.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("secret\n", f);
  std::fclose(f);
  ASSERT_EQ(::symlink(secret.c_str(), (o.dir + "/evil.json").c_str()), 0);
  TraceStore store(o, Filesystem::Default());
  ASSERT_TRUE(store.Init().ok());
  ASSERT_EQ(store.List().size(), 1u);
  v1::TraceInfo info;
  EXPECT_EQ(store.Open("evil", &info).status().code(),
            absl::StatusCode::kNotFound);
  // A listed trace swapped for a symlink after start is not followed.
  ASSERT_EQ(::unlink((o.dir + "/trace1.json").c_str()), 0);
  ASSERT_EQ(::symlink(secret.c_str(), (o.dir + "/trace1.json").c_str()), 0);
  auto opened = store.Open("trace1", &info);
  EXPECT_FALSE(opened.ok());
}

TEST(TraceStore, UnknownIdInAnErrorIsBoundedAndEscaped) {
  TraceStore::Options o;
  o.dir = NewDir("bounded");
  TraceStore store(o, Filesystem::Default());
  ASSERT_TRUE(store.Init().ok());
  const std::string huge = "\n" + std::string(100 * 1024, 'a');
  absl::StatusOr<v1::TraceInfo> info = store.Find(huge);
  EXPECT_EQ(info.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(info.status().message()),
            "no trace with id \"\\n" + std::string(63, 'a') + "...\"");
}

TEST(TraceStore, UnwritableDirectoryIsReportedAndExistingTracesServed) {
  TraceStore::Options o;
  o.dir = NewDir("unwritable");
  FaultyFilesystem fs;
  TraceStore store(o, &fs);
  ASSERT_TRUE(store.Init().ok());
  Add(store, {1});
  fs.FailCreate(true);
  auto temp = store.CreateTempFile();
  ASSERT_FALSE(temp.ok());
  EXPECT_EQ(temp.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(store.Disk().last_error(), temp.status().message());
  EXPECT_NE(store.Disk().last_error().find(": Permission denied"),
            std::string::npos);
  EXPECT_TRUE(store.Open("trace1", nullptr).ok());
}

TEST(TraceStore, DirectoryThatIsAFileFailsInit) {
  TraceStore::Options o;
  o.dir = NewDir("afile");
  ASSERT_TRUE(Filesystem::Default()->WriteFileAtomically(o.dir, "x").ok());
  TraceStore store(o, Filesystem::Default());
  absl::Status s = store.Init();
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(store.Disk().last_error(),
            "mkdir " + o.dir + ": exists and is not a directory");
}

TEST(TraceStore, GzipNames) {
  TraceStore::Options o;
  o.dir = NewDir("gz");
  o.gzip = true;
  TraceStore store(o, Filesystem::Default());
  ASSERT_TRUE(store.Init().ok());
  v1::TraceInfo info = Add(store, {42});
  EXPECT_EQ(info.file_name(), "trace42.json.gz");
  EXPECT_TRUE(info.gzip());
  EXPECT_LT(info.size_bytes(), 40u);
}

TEST(TraceStore, TraceInfoJson) {
  v1::TraceInfo info;
  info.set_id("t\"1");
  info.add_pids(1);
  info.add_pids(2);
  EXPECT_EQ(TraceInfoToJson(info),
            "{\"id\":\"t\\\"1\",\"file_name\":\"\",\"size_bytes\":0,"
            "\"created_unix_ms\":0,\"capture_id\":\"\",\"complete\":false,"
            "\"num_events\":0,\"pids\":[1,2],\"error\":\"\",\"gzip\":false}");
}

}  // namespace
}  // namespace vllm_profiler::collector
