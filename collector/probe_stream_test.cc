#include "collector/probe_stream.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "collector/probe_messages_testing.h"
#include "gtest/gtest.h"

namespace vllm_profiler::collector {
namespace {

using testutil::FullBatch;
using testutil::Hello;
using testutil::Started;

absl::Status Send(ProbeStream& s, const v1::ProbeMessage& m) {
  return s.Accept(m, m.ByteSizeLong());
}

void ExpectInvalid(const absl::Status& s, const std::string& message) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(s.message()), message);
}

// A stream with `options` that said Hello and opened capture "c1".
std::unique_ptr<ProbeStream> OpenStream(const ProbeStream::Options& options) {
  auto s = std::make_unique<ProbeStream>(options);
  EXPECT_TRUE(Send(*s, Hello(1)).ok());
  EXPECT_TRUE(Send(*s, Started("c1")).ok());
  return s;
}

class ProbeStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Send(stream_, Hello(1234, 0)).ok());
    ASSERT_TRUE(Send(stream_, Started("c1")).ok());
  }
  ProbeStream stream_;
};

TEST(ProbeStream, FirstMessageMustBeHello) {
  ProbeStream s;
  ExpectInvalid(Send(s, FullBatch("c1", 0)),
                "first message must be Hello, got batch");
  ExpectInvalid(Send(s, Started("c1")),
                "first message must be Hello, got capture_started");
  ExpectInvalid(Send(s, v1::ProbeMessage()),
                "first message must be Hello, got a message with no payload");
  EXPECT_FALSE(s.has_hello());
}

TEST(ProbeStream, HelloChecks) {
  ProbeStream s;
  v1::ProbeMessage m = Hello(1234);
  m.mutable_hello()->set_protocol_version(2);
  ExpectInvalid(Send(s, m),
                "unsupported protocol_version 2; this collector speaks 1");
  m = Hello(0);
  ExpectInvalid(Send(s, m), "Hello.pid must be a positive process id, got 0");
  m = Hello(1234);
  m.mutable_hello()->mutable_clock()->set_realtime_ns(-5);
  ExpectInvalid(Send(s, m),
                "Hello.clock out of range: realtime_ns -5, monotonic_ns "
                "1000000000000");
  ASSERT_TRUE(Send(s, Hello(1234)).ok());
  ExpectInvalid(Send(s, Hello(1234)), "Hello sent twice on one stream");
  EXPECT_EQ(s.pid(), 1234);
}

TEST(ProbeStream, ClockMapsMonotonicToWall) {
  ProbeStream s;
  ASSERT_TRUE(Send(s, Hello(1, -1, /*clock_skew_ns=*/500)).ok());
  EXPECT_EQ(s.ToWallNs(testutil::kMonoBase + 500), testutil::kRealBase);
  EXPECT_EQ(s.ToWallNs(testutil::kMonoBase + 1500), testutil::kRealBase + 1000);
  // A fresh pair in CaptureStarted replaces the Hello's.
  v1::ProbeMessage m = Started("c");
  m.mutable_capture_started()->mutable_clock()->set_monotonic_ns(10);
  m.mutable_capture_started()->mutable_clock()->set_realtime_ns(20);
  ASSERT_TRUE(Send(s, m).ok());
  EXPECT_EQ(s.ToWallNs(100), 110);
}

TEST_F(ProbeStreamTest, AcceptsFullBatchAndResolvesStrings) {
  ASSERT_TRUE(Send(stream_, FullBatch("c1", 0)).ok());
  EXPECT_EQ(stream_.String(testutil::kStrLinear), "aten::linear");
  EXPECT_EQ(stream_.String(0), "");
  EXPECT_EQ(stream_.ThreadName(100), "MainThread");
  EXPECT_EQ(stream_.batches(), 1u);
  EXPECT_EQ(stream_.events(), 10u);
  // Later batches reuse the ids without redefining them; a gap is counted.
  ASSERT_TRUE(Send(stream_, FullBatch("c1", 3, false)).ok());
  EXPECT_EQ(stream_.sequence_gaps(), 2u);
  // Redefining with the same value is fine.
  ASSERT_TRUE(Send(stream_, FullBatch("c1", 4, true)).ok());
}

TEST_F(ProbeStreamTest, UnknownStringIdNamesIdAndBatch) {
  ExpectInvalid(Send(stream_, FullBatch("c1", 7, /*define_strings=*/false)),
                "batch 7 event 0 refers to unknown string id 2 (name_id)");
  v1::ProbeMessage m = FullBatch("c1", 8);
  m.mutable_batch()->mutable_events(1)->set_input_dtype_ids(0, 999);
  ExpectInvalid(Send(stream_, m),
                "batch 8 event 1 refers to unknown string id 999 "
                "(input_dtype_ids)");
  m = FullBatch("c1", 9);
  m.mutable_batch()->mutable_threads(0)->set_name_id(55);
  ExpectInvalid(Send(stream_, m),
                "batch 9 thread 100 refers to unknown string id 55");
  // A rejected batch defines nothing.
  EXPECT_FALSE(stream_.HasString(testutil::kStrLinear));
}

TEST_F(ProbeStreamTest, StringRedefinitionAndReservedId) {
  ASSERT_TRUE(Send(stream_, FullBatch("c1", 0)).ok());
  v1::ProbeMessage m = FullBatch("c1", 1);
  m.mutable_batch()->mutable_strings(2)->set_value("aten::mm");
  ExpectInvalid(Send(stream_, m),
                "batch 1 redefines string id 3 from \"aten::linear\" to "
                "\"aten::mm\"");
  m = FullBatch("c1", 1);
  m.mutable_batch()->mutable_strings(0)->set_id(0);
  ExpectInvalid(Send(stream_, m),
                "batch 1 defines string id 0, which is reserved");
}

TEST_F(ProbeStreamTest, AcceptsInputSignaturesDefinedOncePerStream) {
  // FullBatch's aten::linear (event 1) refers to signature 7.
  v1::ProbeMessage m = testutil::WithSignatures(FullBatch("c1", 0));
  ASSERT_EQ(m.batch().input_signatures_size(), 1);
  ASSERT_TRUE(Send(stream_, m).ok());
  const v1::InputSignature* sig = stream_.Signature(7);
  ASSERT_NE(sig, nullptr);
  ASSERT_EQ(sig->shapes_size(), 2);
  EXPECT_EQ(sig->shapes(0).dims(1), 4096);
  EXPECT_EQ(stream_.String(sig->dtype_ids(0)), "float");
  // Used later without its definition; defined again identically: fine.
  v1::ProbeMessage later = testutil::WithSignatures(FullBatch("c1", 1, false));
  later.mutable_batch()->clear_input_signatures();
  EXPECT_TRUE(Send(stream_, later).ok());
  EXPECT_TRUE(Send(stream_, testutil::WithSignatures(FullBatch("c1", 2))).ok());
}

TEST_F(ProbeStreamTest, BadInputSignaturesAreNamed) {
  v1::ProbeMessage m = testutil::WithSignatures(FullBatch("c1", 3));
  m.mutable_batch()->clear_input_signatures();
  ExpectInvalid(Send(stream_, m),
                "batch 3 event 1 refers to unknown input signature 7");
  m = testutil::WithSignatures(FullBatch("c1", 3));
  m.mutable_batch()->mutable_events(1)->add_input_dtype_ids(
      testutil::kStrFloat);
  ExpectInvalid(Send(stream_, m),
                "batch 3 event 1 has both input_signature_id and inline "
                "inputs");
  m = testutil::WithSignatures(FullBatch("c1", 3));
  m.mutable_batch()->mutable_input_signatures(0)->set_id(0);
  ExpectInvalid(Send(stream_, m),
                "batch 3 defines input signature id 0, which is reserved");
  m = testutil::WithSignatures(FullBatch("c1", 3));
  m.mutable_batch()->mutable_input_signatures(0)->set_dtype_ids(1, 999);
  ExpectInvalid(Send(stream_, m),
                "batch 3 input signature 7 refers to unknown string id 999");
  m = testutil::WithSignatures(FullBatch("c1", 3));
  m.mutable_batch()->mutable_input_signatures(0)->add_dtype_ids(0);
  ExpectInvalid(Send(stream_, m),
                "batch 3 input signature 7 has 2 shapes but 3 dtypes");
  m = testutil::WithSignatures(FullBatch("c1", 3));
  *m.mutable_batch()->add_input_signatures() = m.batch().input_signatures(0);
  m.mutable_batch()->mutable_input_signatures(1)->mutable_shapes(0)->set_dims(
      0, 9);
  ExpectInvalid(Send(stream_, m),
                "batch 3 redefines input signature 7 with other inputs");
  // A rejected batch defines nothing; a stream's definition is kept.
  EXPECT_EQ(stream_.Signature(7), nullptr);
  ASSERT_TRUE(Send(stream_, testutil::WithSignatures(FullBatch("c1", 4))).ok());
  m = testutil::WithSignatures(FullBatch("c1", 5));
  m.mutable_batch()->mutable_input_signatures(0)->mutable_shapes(1)->add_dims(
      1);
  ExpectInvalid(Send(stream_, m),
                "batch 5 redefines input signature 7 with other inputs");
}

TEST(ProbeStream, InputSignatureBound) {
  // Counted at the memory a definition takes (protobuf's SpaceUsedLong of
  // the parsed message, as the stream counts it).
  ProbeStream::Options options;
  options.max_signature_bytes = 10;
  std::unique_ptr<ProbeStream> s = OpenStream(options);
  v1::ProbeMessage m = testutil::WithSignatures(FullBatch("c1", 0));
  ExpectInvalid(Send(*s, m),
                absl::StrCat("batch 0 grows the input signatures of this "
                             "stream to ",
                             m.batch().input_signatures(0).SpaceUsedLong(),
                             " bytes, over the limit of 10"));
  // Many empty shapes: small on the wire, counted at what they take.
  options.max_signature_bytes = 64 << 10;
  s = OpenStream(options);
  for (int i = 0; i < 5000; ++i) {
    m.mutable_batch()->mutable_input_signatures(0)->add_shapes();
    m.mutable_batch()->mutable_input_signatures(0)->add_dtype_ids(0);
  }
  ASSERT_LT(m.ByteSizeLong(), 64u << 10);
  ExpectInvalid(Send(*s, m),
                absl::StrCat("batch 0 grows the input signatures of this "
                             "stream to ",
                             m.batch().input_signatures(0).SpaceUsedLong(),
                             " bytes, over the limit of 65536"));
}

TEST_F(ProbeStreamTest, EventSanity) {
  v1::ProbeMessage m = FullBatch("c1", 2);
  m.mutable_batch()->mutable_events(3)->set_duration_ns(-5);
  ExpectInvalid(Send(stream_, m),
                "batch 2 event 3 has negative duration_ns -5");
  m = FullBatch("c1", 2);
  m.mutable_batch()->mutable_events(4)->set_kind(
      static_cast<v1::EventKind>(99));
  ExpectInvalid(Send(stream_, m), "batch 2 event 4 has unknown kind 99");
  m = FullBatch("c1", 2);
  m.mutable_batch()->mutable_events(4)->set_kind(v1::EVENT_KIND_UNSPECIFIED);
  ExpectInvalid(Send(stream_, m), "batch 2 event 4 has unknown kind 0");
  m = FullBatch("c1", 2);
  m.mutable_batch()->mutable_events(0)->set_start_ns(-1);
  ExpectInvalid(Send(stream_, m),
                "batch 2 event 0 has start_ns out of range: -1");
  m = FullBatch("c1", 2);
  m.mutable_batch()->mutable_events(1)->mutable_args(0)->set_key_id(0);
  ExpectInvalid(Send(stream_, m), "batch 2 event 1 has an arg without key_id");
}

TEST_F(ProbeStreamTest, OversizedBatchNamesBothSizes) {
  ProbeStream::Options options;
  options.max_batch_bytes = 1000;
  std::unique_ptr<ProbeStream> stream = OpenStream(options);
  ProbeStream& s = *stream;
  ExpectInvalid(s.Accept(FullBatch("c1", 4), 5000),
                "batch 4 is 5000 bytes, over the limit of 1000 bytes "
                "(Welcome.max_batch_bytes)");
}

TEST_F(ProbeStreamTest, CaptureLifecycle) {
  ExpectInvalid(Send(stream_, FullBatch("other", 0)),
                "batch 0 is for capture \"other\", which is not open on this "
                "stream");
  ExpectInvalid(Send(stream_, Started("c1")),
                "capture_started for \"c1\", which is already open on this "
                "stream");
  ExpectInvalid(Send(stream_, Started("")),
                "capture_started has no capture_id");
  ExpectInvalid(Send(stream_, testutil::Finished("nope")),
                "capture_finished for \"nope\", which is not open on this "
                "stream");
  ASSERT_TRUE(Send(stream_, testutil::Finished("c1")).ok());
  EXPECT_FALSE(stream_.IsCaptureOpen("c1"));
  ExpectInvalid(Send(stream_, FullBatch("c1", 0)),
                "batch 0 is for capture \"c1\", which is not open on this "
                "stream");
}

TEST(ProbeStream, MalformedBytes) {
  v1::ProbeMessage m;
  absl::Status s = ParseProbeMessage("\xff\xff\xff", &m);
  ExpectInvalid(s,
                "malformed ProbeMessage of 3 bytes: not a valid protobuf "
                "encoding");
}

TEST(ProbeStream, ThreadBound) {
  ProbeStream::Options options;
  options.max_threads = 1;
  std::unique_ptr<ProbeStream> stream = OpenStream(options);
  ProbeStream& s = *stream;
  v1::ProbeMessage m = FullBatch("c1", 0);
  v1::ThreadInfo* t = m.mutable_batch()->add_threads();
  t->set_tid(101);
  t->set_name_id(testutil::kStrThread);
  ExpectInvalid(Send(s, m),
                "batch 0 announces more than 1 threads on this stream");
}

TEST(ProbeStream, StringTableBound) {
  ProbeStream::Options options;
  options.max_string_bytes = 100;
  std::unique_ptr<ProbeStream> stream = OpenStream(options);
  ProbeStream& s = *stream;
  ExpectInvalid(Send(s, FullBatch("c1", 0)),
                "batch 0 grows the string table of this stream to 201 bytes, "
                "over the limit of 100");
}

TEST(ProbeStream, StepSummariesAreChecked) {
  ProbeStream s;
  v1::ProbeMessage m;
  v1::StepSummary* step = m.mutable_step_summaries()->add_steps();
  step->set_step(1);
  step->set_start_ns(10);
  step->set_duration_ns(5);
  step->set_num_tokens(-1);
  ExpectInvalid(Send(s, m), "first message must be Hello, got step_summaries");
  ASSERT_TRUE(Send(s, Hello(1234, 0)).ok());
  EXPECT_TRUE(Send(s, m).ok());
  step->set_duration_ns(-5);
  ExpectInvalid(Send(s, m), "step summary 0: duration_ns out of range: -5");
  step->set_duration_ns(5);
  step->set_num_requests(-2);
  ExpectInvalid(Send(s, m), "step summary 0: batch count below -1: -2");
  step->set_num_requests(1);
  step->set_step(0);
  ExpectInvalid(Send(s, m), "step summary 0: step number below 1: 0");
  step->set_step(1);
  step->set_error(std::string(300, 'E'));
  ExpectInvalid(Send(s, m),
                "step summary 0: error text longer than 256 bytes: 300");
  step->set_error("RuntimeError");
  EXPECT_TRUE(Send(s, m).ok());
  EXPECT_EQ(s.Accept(m, 5u << 20).message(),
            "StepSummaries of 5242880 bytes exceeds the limit of 4194304");
}

}  // namespace
}  // namespace vllm_profiler::collector
