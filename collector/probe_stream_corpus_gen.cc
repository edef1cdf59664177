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
  Write(dir + "/input_signatures",
        {testutil::Hello(16, 0), testutil::Started("c1"),
         testutil::WithSignatures(testutil::FullBatch("c1", 0)),
         testutil::WithSignatures(testutil::FullBatch("c1", 1, false)),
         testutil::Finished("c1", 2)});
  auto unknown_signature =
      testutil::WithSignatures(testutil::FullBatch("c", 0));
  unknown_signature.mutable_batch()->clear_input_signatures();
  Write(dir + "/input_signature_unknown",
        {testutil::Hello(17), testutil::Started("c"), unknown_signature});
  vllm_profiler::v1::ProbeMessage sums;
  for (int i = 1; i <= 3; ++i) {
    auto* st = sums.mutable_step_summaries()->add_steps();
    st->set_step(i);
    st->set_start_ns(testutil::kMonoBase + i * 1000000);
    st->set_duration_ns(900000);
    st->set_num_requests(4);
    st->set_num_tokens(i == 3 ? -1 : 64);
    if (i == 2) st->set_error("RuntimeError");
  }
  Write(dir + "/step_summaries", {testutil::Hello(14, 0), sums});
  sums.mutable_step_summaries()->mutable_steps(1)->set_duration_ns(-3);
  Write(dir + "/step_summaries_bad", {testutil::Hello(15), sums});
  return 0;
}
