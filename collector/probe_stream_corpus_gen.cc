// Writes the seed corpus of probe_stream_fuzz (framed ProbeMessage
// sequences) into the folder given as argv[1]:
//   bazel run //collector:probe_stream_corpus_gen --
//   $PWD/collector/testdata/probe_stream_corpus
#include <fstream>
#include <string>
#include <vector>

#include "collector/probe_messages_testing.h"

namespace t = vllm_profiler::collector::testing;

namespace {

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
  Write(dir + "/full_capture",
        {t::Hello(10, 0), t::Started("c1"), t::FullBatch("c1", 0),
         t::FullBatch("c1", 1, false, 200000), t::Finished("c1", 3)});
  Write(dir + "/no_hello", {t::FullBatch("c1", 0)});
  Write(dir + "/unknown_string",
        {t::Hello(11), t::Started("c"), t::FullBatch("c", 0, false)});
  auto bad = t::FullBatch("c", 0);
  bad.mutable_batch()->mutable_events(2)->set_duration_ns(-1);
  Write(dir + "/negative_duration", {t::Hello(12), t::Started("c"), bad});
  Write(dir + "/two_captures",
        {t::Hello(13, 1), t::Started("a"),
         t::Started("b", vllm_profiler::v1::CAPTURE_ORIGIN_COMMAND),
         t::FullBatch("a", 0), t::FullBatch("b", 1, false), t::Finished("a"),
         t::Finished("b")});
  vllm_profiler::v1::ProbeMessage sums;
  for (int i = 1; i <= 3; ++i) {
    auto* st = sums.mutable_step_summaries()->add_steps();
    st->set_step(i);
    st->set_start_ns(t::kMonoBase + i * 1000000);
    st->set_duration_ns(900000);
    st->set_num_requests(4);
    st->set_num_tokens(i == 3 ? -1 : 64);
    if (i == 2) st->set_error("RuntimeError");
  }
  Write(dir + "/step_summaries", {t::Hello(14, 0), sums});
  sums.mutable_step_summaries()->mutable_steps(1)->set_duration_ns(-3);
  Write(dir + "/step_summaries_bad", {t::Hello(15), sums});
  return 0;
}
