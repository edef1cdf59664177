// Writes the seed corpus of probe_stream_fuzz (framed ProbeMessage
// sequences) into the folder given as argv[1]:
//   bazel run //collector:probe_stream_corpus_gen --
//   $PWD/collector/testdata/probe_stream_corpus
#include <fstream>
#include <string>
#include <vector>

#include "collector/probe_messages_testing.h"

namespace {

namespace testutil = vllm_profiler::collector::testutil;

void Write(const std::string& path,
           const std::vector<vllm_profiler::v1::ProbeMessage>& messages) {
  std::string out;
  for (const auto& m : messages) {
    std::string bytes = m.SerializeAsString();
    if (bytes.size() > 65535) bytes.resize(65535);
    out.push_back(static_cast<char>(bytes.size() & 0xff));
    out.push_back(static_cast<char>(bytes.size() >> 8));
    out += bytes;
  }
  std::ofstream(path, std::ios::binary) << out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 1;
  std::string dir = argv[1];
  Write(dir + "/full_capture", {testutil::Hello(10, 0), testutil::Started("c1"),
                                testutil::FullBatch("c1", 0),
                                testutil::FullBatch("c1", 1, false, 200000),
                                testutil::Finished("c1", 3)});
  Write(dir + "/no_hello", {testutil::FullBatch("c1", 0)});
  Write(dir + "/unknown_string", {testutil::Hello(11), testutil::Started("c"),
                                  testutil::FullBatch("c", 0, false)});
  auto bad = testutil::FullBatch("c", 0);
  bad.mutable_batch()->mutable_events(2)->set_duration_ns(-1);
  Write(dir + "/negative_duration",
        {testutil::Hello(12), testutil::Started("c"), bad});
  Write(dir + "/two_captures",
        {testutil::Hello(13, 1), testutil::Started("a"),
         testutil::Started("b", vllm_profiler::v1::CAPTURE_ORIGIN_COMMAND),
         testutil::FullBatch("a", 0), testutil::FullBatch("b", 1, false),
         testutil::Finished("a"), testutil::Finished("b")});
  return 0;
}
