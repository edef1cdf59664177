#include "probe/core/event_converter.h"

#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace vllm_profiler::probe {
namespace {

std::string Name(const v1::EventBatch& b, uint32_t id) {
  for (const auto& s : b.strings()) {
    if (s.id() == id) return s.value();
  }
  return "?";
}

// Converts every queued chunk, in the order given by `order` (indices into
// the queue), into one batch with its strings.
v1::EventBatch ConvertQueued(Recorder& r, EventConverter& conv,
                             StringTable& strings, bool reverse) {
  std::deque<QueueItem> items = r.TakeQueued(absl::ZeroDuration());
  if (reverse) std::reverse(items.begin(), items.end());
  v1::EventBatch batch;
  for (QueueItem& item : items) {
    if (item.chunk == nullptr) continue;
    conv.Convert(*item.chunk, &batch);
    r.Release(item.chunk);
  }
  uint32_t wm = 0;
  strings.AppendNew(&wm, &batch);
  return batch;
}

TEST(EventConverterTest, StepEndedOnAnotherThreadArrivingFirst) {
  // execute_model on one thread, sample_tokens on another: the end's chunk
  // may reach the converter before the begin's.
  FakeClock clock(1000);
  Recorder r(Recorder::Options{}, &clock);
  StringTable strings;
  EventConverter::Options o;
  o.step_name = "W.execute_model+sample_tokens";
  o.thread_name = [](uint32_t) { return std::string("t"); };
  EventConverter conv(o, &strings);
  r.Begin(1);
  r.StepBegin(7);
  r.StepArgInt(7, "num_new_requests", 2);
  std::thread other([&] {
    clock.AdvanceNs(40);
    r.StepArgStr(7, "request_ids", "a,b");
    r.StepError(7, "RuntimeError");
    r.StepEnd(7);
  });
  other.join();
  r.End(nullptr, 1);
  v1::EventBatch batch = ConvertQueued(r, conv, strings, /*reverse=*/true);
  ASSERT_EQ(batch.events_size(), 1);
  const v1::Event& step = batch.events(0);
  EXPECT_EQ(step.step(), 7);
  EXPECT_EQ(step.duration_ns(), 40);
  EXPECT_EQ(Name(batch, step.name_id()), "W.execute_model+sample_tokens");
  std::map<std::string, std::string> args;
  for (const v1::Arg& a : step.args()) {
    args[Name(batch, a.key_id())] = a.has_string_id()
                                        ? Name(batch, a.string_id())
                                        : std::to_string(a.int_value());
  }
  EXPECT_EQ(args, (std::map<std::string, std::string>{{"error", "RuntimeError"},
                                                      {"num_new_requests", "2"},
                                                      {"request_ids", "a,b"}}));
}

TEST(EventConverterTest, SpansArePythonEventsAndOpenOnesCloseAtFlush) {
  FakeClock clock(1000);
  Recorder r(Recorder::Options{}, &clock);
  StringTable strings;
  EventConverter::Options o;
  o.thread_name = [](uint32_t) { return std::string("t"); };
  EventConverter conv(o, &strings);
  r.Begin(1);
  r.StepBegin(1);
  uint64_t exec = r.SpanBegin("execute_model");
  ASSERT_NE(exec, 0u);
  clock.AdvanceNs(10);
  r.SpanEnd(exec);
  uint64_t sample = r.SpanBegin("sample_tokens");
  clock.AdvanceNs(5);
  r.End(nullptr, 1);
  EXPECT_EQ(r.SpanBegin("late"), 0u);  // Not capturing.
  v1::EventBatch batch = ConvertQueued(r, conv, strings, false);
  ASSERT_EQ(batch.events_size(), 1);
  EXPECT_EQ(batch.events(0).kind(), v1::EVENT_KIND_PYTHON);
  EXPECT_EQ(Name(batch, batch.events(0).name_id()), "execute_model");
  EXPECT_EQ(batch.events(0).duration_ns(), 10);
  v1::EventBatch tail;
  EXPECT_EQ(conv.Flush(1100, &tail), 2u);  // The step and sample_tokens.
  (void)sample;
  std::set<int> kinds;
  for (const v1::Event& e : tail.events()) kinds.insert(e.kind());
  EXPECT_EQ(kinds, (std::set<int>{v1::EVENT_KIND_STEP, v1::EVENT_KIND_PYTHON}));
}

TEST(EventConverterTest, PairsOpsAndStepsWithArgsAndShapes) {
  FakeClock clock(1000);
  Recorder r(Recorder::Options{}, &clock);
  StringTable strings;
  EventConverter::Options o;
  o.thread_name = [](uint32_t) { return std::string("main"); };
  EventConverter conv(o, &strings);

  r.Begin(1);
  r.StepBegin(100);
  const int64_t args[4] = {5, 36, 1, -1};
  r.StepArgs(100, args);
  clock.AdvanceNs(10);
  const int64_t dims[2] = {4, 8};
  InputArg in[1] = {{dims, 2, "float"}};
  uint64_t outer = r.OpBegin("aten::linear", 3, in, 1);
  clock.AdvanceNs(5);
  uint64_t inner = r.OpBegin("aten::mm", -1, nullptr, 0);
  clock.AdvanceNs(20);
  r.OpEnd(inner);
  clock.AdvanceNs(5);
  r.OpEnd(outer);
  clock.AdvanceNs(10);
  r.StepEnd(100);
  r.End(nullptr, 1);

  v1::EventBatch batch;
  size_t n = 0;
  for (QueueItem& item : r.TakeQueued(absl::ZeroDuration())) {
    n += conv.Convert(*item.chunk, &batch);
    r.Release(item.chunk);
  }
  uint32_t wm = 0;
  strings.AppendNew(&wm, &batch);
  ASSERT_EQ(n, 3u);
  ASSERT_EQ(batch.events_size(), 3);
  ASSERT_EQ(batch.threads_size(), 1);
  EXPECT_EQ(Name(batch, batch.threads(0).name_id()), "main");
  const v1::Event& mm = batch.events(0);
  EXPECT_EQ(mm.kind(), v1::EVENT_KIND_CPU_OP);
  EXPECT_EQ(Name(batch, mm.name_id()), "aten::mm");
  EXPECT_EQ(mm.start_ns(), 1015);
  EXPECT_EQ(mm.duration_ns(), 20);
  const v1::Event& lin = batch.events(1);
  EXPECT_EQ(Name(batch, lin.name_id()), "aten::linear");
  EXPECT_EQ(lin.start_ns(), 1010);
  EXPECT_EQ(lin.duration_ns(), 30);
  EXPECT_EQ(lin.sequence_number(), 3u);
  ASSERT_EQ(lin.input_shapes_size(), 1);
  EXPECT_EQ(lin.input_shapes(0).dims_size(), 2);
  EXPECT_EQ(lin.input_shapes(0).dims(1), 8);
  EXPECT_EQ(Name(batch, lin.input_dtype_ids(0)), "float");
  const v1::Event& step = batch.events(2);
  EXPECT_EQ(step.kind(), v1::EVENT_KIND_STEP);
  EXPECT_EQ(step.step(), 100);
  EXPECT_EQ(Name(batch, step.name_id()), "execute_model");
  EXPECT_EQ(step.start_ns(), 1000);
  EXPECT_EQ(step.duration_ns(), 50);
  ASSERT_EQ(step.args_size(), 3);  // -1 is left out.
  EXPECT_EQ(Name(batch, step.args(1).key_id()), "num_scheduled_tokens");
  EXPECT_EQ(step.args(1).int_value(), 36);
  // Nesting: the op lies inside the step.
  EXPECT_GE(lin.start_ns(), step.start_ns());
  EXPECT_LE(lin.start_ns() + lin.duration_ns(),
            step.start_ns() + step.duration_ns());
}

TEST(EventConverterTest, FlushClosesOpenEventsAtCaptureEnd) {
  FakeClock clock(0);
  Recorder r(Recorder::Options{}, &clock);
  StringTable strings;
  EventConverter conv(EventConverter::Options{}, &strings);
  r.Begin(1);
  r.StepBegin(1);
  r.OpBegin("open", -1, nullptr, 0);
  r.End(nullptr, 1);
  v1::EventBatch batch;
  for (QueueItem& item : r.TakeQueued(absl::ZeroDuration())) {
    EXPECT_EQ(conv.Convert(*item.chunk, &batch), 0u);
    r.Release(item.chunk);
  }
  EXPECT_EQ(conv.Flush(500, &batch), 2u);
  ASSERT_EQ(batch.events_size(), 2);
  EXPECT_EQ(batch.events(0).duration_ns(), 500);
  EXPECT_EQ(conv.Flush(600, &batch), 0u);
}

TEST(EventConverterTest, LongOpenOpKeepsItsShapesAcrossManyChunks) {
  FakeClock clock(1000);
  Recorder::Options ro;
  ro.chunk_bytes = 4096;  // Many chunks: the shape pools get compacted.
  Recorder r(ro, &clock);
  StringTable strings;
  EventConverter conv(EventConverter::Options{}, &strings);
  r.Begin(1);
  const int64_t outer_dims[3] = {7, 8, 9};
  InputArg outer_in[2] = {{outer_dims, 3, "float"}, {nullptr, -1, "Scalar"}};
  const uint64_t outer = r.OpBegin("outer", 1, outer_in, 2);
  v1::EventBatch batch;
  size_t n = 0;
  auto drain = [&] {
    for (QueueItem& item : r.TakeQueued(absl::ZeroDuration())) {
      if (item.chunk == nullptr) continue;
      n += conv.Convert(*item.chunk, &batch);
      r.Release(item.chunk);
    }
  };
  const int64_t dims[2] = {2, 3};
  InputArg in[3] = {{dims, 2, "float"}, {dims, 2, "half"}, {dims, 1, "int"}};
  for (int i = 0; i < 5000; ++i) {
    clock.AdvanceNs(1);
    r.OpEnd(r.OpBegin("inner", i, in, 3));
    if (i % 100 == 0) drain();
  }
  clock.AdvanceNs(1);
  r.OpEnd(outer);
  r.End(nullptr, 1);
  drain();
  uint32_t wm = 0;
  strings.AppendNew(&wm, &batch);
  ASSERT_EQ(n, 5001u);
  ASSERT_EQ(batch.events_size(), 5001);
  const v1::Event& o = batch.events(5000);
  EXPECT_EQ(Name(batch, o.name_id()), "outer");
  EXPECT_EQ(o.start_ns(), 1000);
  EXPECT_EQ(o.duration_ns(), 5001);
  ASSERT_EQ(o.input_shapes_size(), 2);
  EXPECT_EQ(o.input_shapes(0).dims_size(), 3);
  EXPECT_EQ(o.input_shapes(0).dims(2), 9);
  EXPECT_EQ(o.input_shapes(1).dims_size(), 0);
  EXPECT_EQ(Name(batch, o.input_dtype_ids(1)), "Scalar");
  const v1::Event& last = batch.events(4999);
  EXPECT_EQ(last.sequence_number(), 4999u);
  ASSERT_EQ(last.input_shapes_size(), 3);
  EXPECT_EQ(last.input_shapes(2).dims_size(), 1);
  EXPECT_EQ(Name(batch, last.input_dtype_ids(1)), "half");
}

TEST(EventConverterTest, FlushKeepsShapesOfOpenOps) {
  FakeClock clock(100);
  Recorder r(Recorder::Options{}, &clock);
  StringTable strings;
  EventConverter conv(EventConverter::Options{}, &strings);
  r.Begin(1);
  const int64_t dims[1] = {5};
  InputArg in[1] = {{dims, 1, "float"}};
  r.OpBegin("open", 2, in, 1);
  r.End(nullptr, 1);
  v1::EventBatch batch;
  for (QueueItem& item : r.TakeQueued(absl::ZeroDuration())) {
    EXPECT_EQ(conv.Convert(*item.chunk, &batch), 0u);
    r.Release(item.chunk);
  }
  EXPECT_EQ(conv.Flush(150, &batch), 1u);
  ASSERT_EQ(batch.events_size(), 1);
  EXPECT_EQ(batch.events(0).duration_ns(), 50);
  EXPECT_EQ(batch.events(0).sequence_number(), 2u);
  ASSERT_EQ(batch.events(0).input_shapes_size(), 1);
  EXPECT_EQ(batch.events(0).input_shapes(0).dims(0), 5);
}

// Converts every queued chunk into `batch` (no strings).
void ConvertInto(Recorder& r, EventConverter& conv, v1::EventBatch* batch) {
  for (QueueItem& item : r.TakeQueued(absl::ZeroDuration())) {
    if (item.chunk == nullptr) continue;
    conv.Convert(*item.chunk, batch);
    r.Release(item.chunk);
  }
}

// A recorder at FakeClock(100) and a converter over it, as the sender has
// them; `signatures`: the collector reads input signatures.
struct Rig {
  explicit Rig(bool signatures) { conv.set_input_signatures(signatures); }
  FakeClock clock{100};
  Recorder r{Recorder::Options{}, &clock};
  StringTable strings;
  EventConverter conv{EventConverter::Options{}, &strings};
};

TEST(EventConverterTest, EqualInputsShareOneSignatureDefinedOncePerStream) {
  Rig rig(/*signatures=*/true);
  const int64_t a[2] = {4, 8};
  const int64_t b[2] = {4, 9};
  InputArg same[2] = {{a, 2, "float"}, {nullptr, -1, "Scalar"}};
  InputArg other[1] = {{b, 2, "float"}};
  // Capture 1 leaves other bytes in the pooled chunk that capture 2 reuses:
  // equal inputs must still be equal bytes (zeroed padding).
  rig.r.Begin(1);
  for (int i = 0; i < 50; ++i) {
    InputArg junk[1] = {{b, 2, "abcdefghijklmnopqrstuvw"}};
    rig.r.OpEnd(rig.r.OpBegin("junk", -1, junk, 1));
  }
  rig.r.End(nullptr, 1);
  v1::EventBatch first;
  ConvertInto(rig.r, rig.conv, &first);
  rig.r.Begin(2);
  for (int i = 0; i < 50; ++i) {
    rig.r.OpEnd(rig.r.OpBegin(i % 2 ? "aten::add" : "aten::mul", -1, same, 2));
  }
  rig.r.OpEnd(rig.r.OpBegin("aten::mm", -1, other, 1));
  rig.r.OpEnd(rig.r.OpBegin("aten::empty", -1, nullptr, 0));
  rig.r.End(nullptr, 2);
  v1::EventBatch batch;
  ConvertInto(rig.r, rig.conv, &batch);
  uint32_t wm = 0;
  rig.strings.AppendNew(&wm, &batch);

  ASSERT_EQ(batch.events_size(), 52);
  ASSERT_EQ(batch.input_signatures_size(), 2);  // same, other.
  const v1::InputSignature& sig = batch.input_signatures(0);
  ASSERT_EQ(sig.shapes_size(), 2);
  EXPECT_EQ(sig.shapes(0).dims(1), 8);
  EXPECT_EQ(sig.shapes(1).dims_size(), 0);  // Not a tensor.
  EXPECT_EQ(Name(batch, sig.dtype_ids(0)), "float");
  EXPECT_EQ(Name(batch, sig.dtype_ids(1)), "Scalar");
  for (int i = 0; i < 50; ++i) {
    const v1::Event& e = batch.events(i);
    EXPECT_EQ(e.input_signature_id(), sig.id()) << i;
    EXPECT_EQ(e.input_shapes_size(), 0) << i;
    EXPECT_EQ(e.input_dtype_ids_size(), 0) << i;
  }
  EXPECT_EQ(batch.events(50).input_signature_id(),
            batch.input_signatures(1).id());
  EXPECT_EQ(batch.events(51).input_signature_id(), 0u);  // No inputs.

  // One aten::add with `same` inputs, in capture `gen` of its own.
  auto one_add = [&](uint64_t gen) {
    rig.r.Begin(gen);
    rig.r.OpEnd(rig.r.OpBegin("aten::add", -1, same, 2));
    rig.r.End(nullptr, gen);
    v1::EventBatch b;
    ConvertInto(rig.r, rig.conv, &b);
    return b;
  };
  // The same inputs later on the stream: no definition again...
  const v1::EventBatch again = one_add(3);
  ASSERT_EQ(again.events_size(), 1);
  EXPECT_EQ(again.events(0).input_signature_id(), sig.id());
  EXPECT_EQ(again.input_signatures_size(), 0);
  // ...but on a new stream, defined before its first use there.
  rig.conv.Reset();
  const v1::EventBatch fresh = one_add(4);
  ASSERT_EQ(fresh.input_signatures_size(), 1);
  EXPECT_EQ(fresh.input_signatures(0).id(), sig.id());
  // A collector without signatures: inline inputs.
  rig.conv.set_input_signatures(false);
  const v1::EventBatch old = one_add(5);
  ASSERT_EQ(old.events_size(), 1);
  EXPECT_EQ(old.events(0).input_signature_id(), 0u);
  EXPECT_EQ(old.events(0).input_shapes_size(), 2);
  EXPECT_EQ(old.input_signatures_size(), 0);
}

TEST(EventConverterTest, LeafAndEnclosingOperatorsConvertAlike) {
  for (const bool signatures : {false, true}) {
    SCOPED_TRACE(signatures ? "signatures" : "inline inputs");
    Rig rig(signatures);
    const int64_t dims[2] = {4, 8};
    InputArg in[1] = {{dims, 2, "float"}};
    rig.r.Begin(1);
    const uint64_t outer = rig.r.OpBegin("aten::linear", 5, in, 1);
    rig.clock.AdvanceNs(10);
    const uint64_t inner = rig.r.OpBegin("aten::mm", 6, in, 1);  // A leaf.
    rig.clock.AdvanceNs(10);
    rig.r.OpEnd(inner);
    rig.clock.AdvanceNs(10);
    rig.r.OpEnd(outer);
    rig.r.End(nullptr, 1);
    const v1::EventBatch b = ConvertQueued(rig.r, rig.conv, rig.strings, false);
    ASSERT_EQ(b.events_size(), 2);
    const v1::Event& mm = b.events(0);  // Ends first.
    const v1::Event& linear = b.events(1);
    EXPECT_EQ(Name(b, mm.name_id()), "aten::mm");
    EXPECT_EQ(mm.start_ns(), 110);
    EXPECT_EQ(mm.duration_ns(), 10);
    EXPECT_EQ(mm.sequence_number(), 6u);
    EXPECT_EQ(mm.external_id(), inner);
    EXPECT_EQ(Name(b, linear.name_id()), "aten::linear");
    EXPECT_EQ(linear.start_ns(), 100);
    EXPECT_EQ(linear.duration_ns(), 30);
    for (const v1::Event* e : {&mm, &linear}) {
      if (signatures) {
        ASSERT_EQ(b.input_signatures_size(), 1);
        EXPECT_EQ(e->input_signature_id(), b.input_signatures(0).id());
      } else {
        ASSERT_EQ(e->input_shapes_size(), 1);
        EXPECT_EQ(e->input_shapes(0).dims(1), 8);
        EXPECT_EQ(Name(b, e->input_dtype_ids(0)), "float");
      }
    }
    v1::EventBatch rest;
    EXPECT_EQ(rig.conv.Flush(2000, &rest), 0u);  // Nothing left open.
  }
}

TEST(EventConverterTest, OperatorsThatShareAMemoSlotKeepTheirOwnNameAndInputs) {
  // The names are alike in length and in their first and last 8 bytes, so
  // each input shape sends all five to one slot of the converter's memo.
  // However they interleave (leaves and enclosing ops, signatures or
  // inline), each event must carry its own name and inputs.
  for (const bool signatures : {true, false}) {
    SCOPED_TRACE(signatures ? "signatures" : "inline inputs");
    Rig rig(signatures);
    const int64_t dims[3][2] = {{1, 8}, {2, 8}, {3, 8}};
    std::vector<std::pair<std::string, int64_t>> want;  // Name, first dim.
    rig.r.Begin(1);
    for (int round = 0; round < 3; ++round) {
      for (int n = 0; n < 5; ++n) {
        for (int d = 0; d < 3; ++d) {
          const std::string name = absl::StrCat("aten::op", n, "_same_tail");
          InputArg in[1] = {{dims[d], 2, "float"}};
          const uint64_t id = rig.r.OpBegin(name.c_str(), -1, in, 1);
          if (n == 4) rig.r.Instant("not a leaf");  // Ends by a kOpEnd.
          rig.r.OpEnd(id);
          want.emplace_back(name, d + 1);
        }
      }
    }
    rig.r.End(nullptr, 1);
    const v1::EventBatch b = ConvertQueued(rig.r, rig.conv, rig.strings, false);
    std::map<uint32_t, int64_t> signature_dim0;
    for (const v1::InputSignature& s : b.input_signatures()) {
      signature_dim0[s.id()] = s.shapes(0).dims(0);
    }
    std::vector<std::pair<std::string, int64_t>> got;
    for (const v1::Event& e : b.events()) {
      if (e.kind() != v1::EVENT_KIND_CPU_OP) continue;
      got.emplace_back(Name(b, e.name_id()),
                       signatures ? signature_dim0[e.input_signature_id()]
                                  : e.input_shapes(0).dims(0));
    }
    EXPECT_EQ(got, want);
    EXPECT_EQ(b.input_signatures_size(), signatures ? 3 : 0);
  }
}

TEST(EventConverterTest, FullSignatureTableSendsInputsInline) {
  FakeClock clock(100);
  Recorder::Options ro;
  ro.max_bytes = 256 << 20;
  Recorder r(ro, &clock);
  StringTable strings;
  EventConverter conv(EventConverter::Options{}, &strings);
  conv.set_input_signatures(true);
  constexpr int kOps = 32768 + 3;  // The table holds 32768.
  r.Begin(1);
  for (int64_t i = 0; i < kOps; ++i) {
    InputArg in[1] = {{&i, 1, "float"}};
    r.OpEnd(r.OpBegin("aten::add", -1, in, 1));
  }
  r.End(nullptr, 1);
  v1::EventBatch batch;
  ConvertInto(r, conv, &batch);
  ASSERT_EQ(batch.events_size(), kOps);
  EXPECT_EQ(conv.signatures(), 32768u);
  EXPECT_EQ(batch.input_signatures_size(), 32768);
  const v1::Event& last = batch.events(kOps - 1);
  EXPECT_EQ(last.input_signature_id(), 0u);
  ASSERT_EQ(last.input_shapes_size(), 1);
  EXPECT_EQ(last.input_shapes(0).dims(0), kOps - 1);
}

TEST(StringTableTest, IdsStableAndWatermarkResends) {
  StringTable t;
  EXPECT_EQ(t.Intern("a"), 1u);
  EXPECT_EQ(t.Intern("b"), 2u);
  EXPECT_EQ(t.Intern("a"), 1u);
  v1::EventBatch b1;
  uint32_t wm = 0;
  t.AppendNew(&wm, &b1);
  EXPECT_EQ(b1.strings_size(), 2);
  v1::EventBatch b2;
  t.AppendNew(&wm, &b2);
  EXPECT_EQ(b2.strings_size(), 0);
  uint32_t new_stream = 0;
  v1::EventBatch b3;
  t.AppendNew(&new_stream, &b3);
  EXPECT_EQ(b3.strings_size(), 2);
}

TEST(StringTableTest, BoundedTable) {
  StringTable t(StringTable::Options{2});
  EXPECT_EQ(t.Intern("a"), 1u);
  EXPECT_EQ(t.Intern("b"), 2u);
  const uint32_t full = t.Intern("c");
  EXPECT_EQ(t.Intern("d"), full);
  v1::EventBatch b;
  uint32_t wm = 0;
  t.AppendNew(&wm, &b);
  EXPECT_EQ(b.strings(2).value(), "<names table full>");
}

}  // namespace
}  // namespace vllm_profiler::probe
