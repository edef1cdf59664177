#include "probe/core/recorder.h"

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace vllm_profiler::probe {
namespace {

std::vector<RecordView> Drain(Recorder& r, std::vector<Chunk*>* chunks) {
  std::vector<RecordView> out;
  for (QueueItem& item : r.TakeQueued(absl::ZeroDuration())) {
    if (item.chunk == nullptr) continue;
    chunks->push_back(item.chunk);
    EXPECT_TRUE(ForEachRecord(*item.chunk,
                              [&](const RecordView& v) { out.push_back(v); }));
  }
  return out;
}

TEST(RecorderTest, NothingRecordedWhenNotCapturing) {
  FakeClock clock;
  Recorder r(Recorder::Options{}, &clock);
  EXPECT_FALSE(r.capturing());
  EXPECT_EQ(r.OpBegin("aten::mm", 1, nullptr, 0), 0u);
  r.StepBegin(1);
  r.End(nullptr, 0);
  std::vector<Chunk*> chunks;
  EXPECT_TRUE(Drain(r, &chunks).empty());
  EXPECT_EQ(r.bytes_in_use(), 0u);
}

TEST(RecorderTest, RecordsRoundTripWithShapes) {
  FakeClock clock(5000);
  Recorder r(Recorder::Options{}, &clock);
  r.Begin(7);
  r.StepBegin(3);
  const int64_t args[4] = {4, 36, 1, 3};
  r.StepArgs(3, args);
  const int64_t dims_a[2] = {2, 3};
  InputArg inputs[2] = {{dims_a, 2, "float"}, {nullptr, -1, "Scalar"}};
  clock.AdvanceNs(10);
  const uint64_t id = r.OpBegin("aten::mm", 17, inputs, 2);
  EXPECT_NE(id, 0u);
  clock.AdvanceNs(10);
  r.OpEnd(id);
  r.Counter("mem", 1.5);
  r.StepEnd(3);
  auto finished = std::make_unique<v1::ProbeMessage>();
  finished->mutable_capture_finished()->set_capture_id("c");
  r.End(std::move(finished), 7);
  EXPECT_FALSE(r.capturing());

  std::vector<Chunk*> chunks;
  std::deque<QueueItem> items = r.TakeQueued(absl::ZeroDuration());
  ASSERT_EQ(items.size(), 2u);
  ASSERT_NE(items[0].chunk, nullptr);
  EXPECT_EQ(items[0].chunk->generation, 7u);
  EXPECT_EQ(items[0].chunk->tid, Recorder::CurrentTid());
  ASSERT_NE(items[1].message, nullptr);
  EXPECT_EQ(items[1].generation, 7u);
  std::vector<RecordView> v;
  ForEachRecord(*items[0].chunk,
                [&](const RecordView& rv) { v.push_back(rv); });
  ASSERT_EQ(v.size(), 5u);
  EXPECT_EQ(v[0].type, RecordType::kStepBegin);
  EXPECT_EQ(v[0].id, 3u);
  EXPECT_EQ(v[1].type, RecordType::kStepArgs);
  EXPECT_EQ(v[1].step_args[1], 36);
  // Its end came right after its begin: one record, the begin extended.
  EXPECT_EQ(v[2].type, RecordType::kOpLeaf);
  EXPECT_EQ(v[2].id, id);
  EXPECT_EQ(v[2].end_ns, 5020);
  EXPECT_EQ(v[2].name, "aten::mm");
  EXPECT_EQ(v[2].arg, 17);
  EXPECT_EQ(v[2].ts_ns, 5010);
  ASSERT_EQ(v[2].inputs.size(), 2u);
  EXPECT_EQ(v[2].inputs[0].ndim, 2);
  EXPECT_EQ(v[2].inputs[0].dims[1], 3);
  EXPECT_EQ(v[2].inputs[0].dtype, "float");
  EXPECT_EQ(v[2].inputs[1].ndim, -1);
  EXPECT_EQ(v[2].inputs[1].dtype, "Scalar");
  EXPECT_EQ(v[3].type, RecordType::kCounter);
  EXPECT_EQ(v[4].type, RecordType::kStepEnd);
  r.Release(items[0].chunk);
  EXPECT_EQ(r.bytes_in_use(), 0u);
}

TEST(RecorderTest, NamesDtypesAndDimsOfEveryLengthAreCopiedExactly) {
  // The record path copies these with fixed-size moves that overlap
  // (CopyShort): every length class, and the first bytes past each,
  // must come back as written.
  FakeClock clock;
  Recorder::Options o;
  o.max_bytes = 16 << 20;
  Recorder r(o, &clock);
  r.Begin(1);
  std::string text;
  for (int i = 0; i < 200; ++i) text.push_back(static_cast<char>('A' + i % 58));
  int64_t dims[Recorder::kMaxDims];
  for (int d = 0; d < Recorder::kMaxDims; ++d) dims[d] = 1000 + d;
  struct Want {
    std::string name, dtype;
    int32_t ndim;
  };
  std::vector<Want> want;
  for (size_t len = 0; len <= 130; ++len) {
    const std::string name = text.substr(len % 7, len);
    const std::string dtype =
        text.substr(3, 1 + len % Recorder::kMaxDtypeBytes);
    const int32_t ndim = 1 + static_cast<int32_t>(len % Recorder::kMaxDims);
    InputArg in[1] = {{dims, ndim, dtype.c_str()}};
    r.OpEnd(r.OpBegin(name.c_str(), -1, in, 1));
    want.push_back({name, dtype, ndim});
  }
  r.End(nullptr, 1);
  std::vector<Chunk*> chunks;
  const std::vector<RecordView> v = Drain(r, &chunks);
  ASSERT_EQ(v.size(), want.size());
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(v[i].name, want[i].name) << i;
    ASSERT_EQ(v[i].inputs.size(), 1u) << i;
    EXPECT_EQ(v[i].inputs[0].dtype, want[i].dtype) << i;
    ASSERT_EQ(v[i].inputs[0].ndim, want[i].ndim) << i;
    EXPECT_EQ(std::vector<int64_t>(v[i].inputs[0].dims,
                                   v[i].inputs[0].dims + want[i].ndim),
              std::vector<int64_t>(dims, dims + want[i].ndim))
        << i;
  }
  for (Chunk* c : chunks) r.Release(c);
}

TEST(RecorderTest, InputsDecodeLaterFromTheirBlockAndATruncatedBlockHasNone) {
  FakeClock clock;
  Recorder r(Recorder::Options{}, &clock);
  r.Begin(1);
  const int64_t dims[3] = {2, 3, 4};
  InputArg in[2] = {{dims, 3, "c10::Half"}, {nullptr, -1, "Scalar"}};
  r.OpEnd(r.OpBegin("aten::mul", -1, in, 2));
  r.End(nullptr, 1);
  std::deque<QueueItem> items = r.TakeQueued(absl::ZeroDuration());
  ASSERT_FALSE(items.empty());
  std::vector<RecordView> v;
  ASSERT_TRUE(ForEachRecord(
      *items[0].chunk, [&](const RecordView& rv) { v.push_back(rv); },
      /*with_inputs=*/false));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(v[0].inputs.empty());  // Left in the block.
  std::vector<InputMeta> inputs;
  ASSERT_TRUE(DecodeInputs(v[0].inputs_block, &inputs));
  ASSERT_EQ(inputs.size(), 2u);
  EXPECT_EQ(inputs[0].dtype, "c10::Half");
  EXPECT_EQ(std::vector<int64_t>(inputs[0].dims, inputs[0].dims + 3),
            (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(inputs[1].ndim, -1);
  EXPECT_EQ(inputs[1].dtype, "Scalar");
  // Every shorter block is malformed: no inputs, never a partial list.
  const std::string_view block = v[0].inputs_block;
  for (size_t len = 1; len < block.size(); ++len) {
    EXPECT_FALSE(DecodeInputs(block.substr(0, len), &inputs)) << len;
    EXPECT_TRUE(inputs.empty()) << len;
  }
  for (QueueItem& i : items) r.Release(i.chunk);
}

TEST(RecorderTest, OnlyAnEndRightAfterItsBeginExtendsIt) {
  FakeClock clock(1000);
  Recorder r(Recorder::Options{}, &clock);
  r.Begin(1);
  const int64_t dims[1] = {4};
  InputArg in[1] = {{dims, 1, "float"}};
  const uint64_t outer = r.OpBegin("outer", -1, in, 1);
  clock.AdvanceNs(10);
  const uint64_t inner = r.OpBegin("inner", -1, in, 1);
  clock.AdvanceNs(10);
  r.OpEnd(inner);  // Right after its begin: a leaf.
  clock.AdvanceNs(10);
  r.OpEnd(outer);  // After inner's records: an end record.
  const uint64_t spanned = r.OpBegin("spanned", -1, nullptr, 0);
  r.Instant("between");
  r.OpEnd(spanned);  // Another record came between.
  const uint64_t twice = r.OpBegin("twice", -1, nullptr, 0);
  r.OpEnd(twice);
  r.OpEnd(twice);  // A second end for it is an end record, not a patch.
  const uint64_t stolen = r.OpBegin("stolen", -1, nullptr, 0);
  r.End(nullptr, 1);
  r.OpEnd(stolen);  // Its chunk went with End(): nothing to extend.
  std::vector<Chunk*> chunks;
  std::vector<RecordView> v = Drain(r, &chunks);
  std::vector<std::pair<RecordType, std::string>> got;
  for (const RecordView& rv : v) got.emplace_back(rv.type, rv.name);
  const std::vector<std::pair<RecordType, std::string>> want = {
      {RecordType::kOpBegin, "outer"},   {RecordType::kOpLeaf, "inner"},
      {RecordType::kOpEnd, ""},          {RecordType::kOpBegin, "spanned"},
      {RecordType::kInstant, "between"}, {RecordType::kOpEnd, ""},
      {RecordType::kOpLeaf, "twice"},    {RecordType::kOpEnd, ""},
      {RecordType::kOpBegin, "stolen"}};
  EXPECT_EQ(got, want);
  ASSERT_EQ(v.size(), want.size());
  EXPECT_EQ(v[1].id, inner);
  EXPECT_EQ(v[1].ts_ns, 1010);
  EXPECT_EQ(v[1].end_ns, 1020);
  ASSERT_EQ(v[1].inputs.size(), 1u);  // The inputs still decode.
  EXPECT_EQ(v[1].inputs[0].dims[0], 4);
  EXPECT_EQ(v[1].inputs_block, v[0].inputs_block);  // The same key.
  EXPECT_EQ(v[2].id, outer);
  EXPECT_EQ(v[2].ts_ns, 1030);
  for (Chunk* c : chunks) r.Release(c);
}

TEST(RecorderTest, ALeafNeedsRoomForItsEndTick) {
  // A begin that fills its chunk exactly: the end goes into the next chunk
  // as an end record.
  FakeClock clock;
  Recorder::Options o;
  o.chunk_bytes = sizeof(RecordHeader) + 8;  // One begin named "aten::mm".
  Recorder r(o, &clock);
  r.Begin(1);
  const uint64_t id = r.OpBegin("aten::mm", -1, nullptr, 0);
  r.OpEnd(id);
  r.End(nullptr, 1);
  std::vector<Chunk*> chunks;
  std::vector<RecordView> v = Drain(r, &chunks);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].type, RecordType::kOpBegin);
  EXPECT_EQ(v[1].type, RecordType::kOpEnd);
  EXPECT_EQ(v[1].id, id);
  for (Chunk* c : chunks) r.Release(c);
}

// A budget of `chunks` chunks of 1 KiB.
Recorder::Options KiBChunks(int chunks) {
  Recorder::Options o;
  o.chunk_bytes = 1024;
  o.max_bytes = chunks * (1024 + sizeof(Chunk));
  return o;
}

TEST(RecorderTest, BudgetDropsAndCounts) {
  FakeClock clock;
  const Recorder::Options o = KiBChunks(2);
  Recorder r(o, &clock);
  r.Begin(1);
  int recorded = 0;
  for (int i = 0; i < 1000; ++i) {
    if (r.OpBegin("op", -1, nullptr, 0) != 0) ++recorded;
  }
  // 40-byte records: 25 per chunk, 2 chunks.
  const uint64_t dropped = r.TakeDroppedBufferFull();
  EXPECT_EQ(dropped, 1000u - 50u);
  EXPECT_LE(r.bytes_in_use(), o.max_bytes);
  EXPECT_EQ(r.peak_bytes_in_use(), o.max_bytes);
  r.End(nullptr, 1);
  std::vector<Chunk*> chunks;
  EXPECT_EQ(Drain(r, &chunks).size(), 50u);
  for (Chunk* c : chunks) r.Release(c);
  EXPECT_EQ(r.bytes_in_use(), 0u);
}

TEST(RecorderTest, ReleasedChunksAreReusedWithinTheBudget) {
  FakeClock clock;
  const Recorder::Options o = KiBChunks(2);
  Recorder r(o, &clock);
  // Several captures, each filling both chunks and releasing them: pooled
  // chunks are reused, the budget (in use + pooled) is never exceeded.
  for (uint64_t gen = 1; gen <= 4; ++gen) {
    r.Begin(gen);
    for (int i = 0; i < 1000; ++i) r.OpBegin("op", -1, nullptr, 0);
    EXPECT_EQ(r.TakeDroppedBufferFull(), 1000u - 50u) << gen;
    r.End(nullptr, gen);
    std::vector<Chunk*> chunks;
    const std::vector<RecordView> views = Drain(r, &chunks);
    EXPECT_EQ(views.size(), 50u) << gen;
    for (Chunk* c : chunks) {
      EXPECT_EQ(c->generation, gen);
      r.Release(c);
    }
    EXPECT_EQ(r.bytes_in_use(), 0u);
    EXPECT_EQ(r.peak_bytes_in_use(), o.max_bytes);
  }
}

TEST(RecorderTest, PoolFillsForACaptureAndShrinksAfterIt) {
  FakeClock clock;
  const Recorder::Options o = KiBChunks(40);
  Recorder r(o, &clock);
  r.Begin(1);
  r.Prefill(16);
  EXPECT_EQ(r.pooled_chunks(), 16);
  EXPECT_EQ(r.bytes_in_use(), 0u);
  // 25 records per chunk: 30 chunks, the first 16 from the pool.
  for (int i = 0; i < 750; ++i) r.OpBegin("op", -1, nullptr, 0);
  EXPECT_EQ(r.TakeDroppedBufferFull(), 0u);
  EXPECT_EQ(r.pooled_chunks(), 0);
  std::vector<Chunk*> chunks;
  EXPECT_EQ(Drain(r, &chunks).size(), 725u);  // The last chunk is open.
  // Released while capturing: all kept for the record path.
  for (Chunk* c : chunks) r.Release(c);
  EXPECT_EQ(r.pooled_chunks(), 29);
  EXPECT_LE(r.peak_bytes_in_use(), o.max_bytes);
  r.End(nullptr, 1);
  chunks.clear();
  EXPECT_EQ(Drain(r, &chunks).size(), 25u);
  for (Chunk* c : chunks) r.Release(c);
  r.TrimPool();
  EXPECT_EQ(r.pooled_chunks(), 8);  // The idle pool.
  EXPECT_EQ(r.bytes_in_use(), 0u);
}

TEST(RecorderTest, PrefillLeavesHalfTheBudgetToTheThreads) {
  FakeClock clock;
  const Recorder::Options o = KiBChunks(10);
  Recorder r(o, &clock);
  r.Begin(1);
  r.Prefill(16);
  EXPECT_EQ(r.pooled_chunks(), 5);
  for (int i = 0; i < 1000; ++i) r.OpBegin("op", -1, nullptr, 0);
  EXPECT_EQ(r.TakeDroppedBufferFull(), 1000u - 250u);  // Still ten chunks.
  EXPECT_EQ(r.peak_bytes_in_use(), o.max_bytes);
  r.End(nullptr, 1);
  std::vector<Chunk*> chunks;
  EXPECT_EQ(Drain(r, &chunks).size(), 250u);
  for (Chunk* c : chunks) r.Release(c);
}

TEST(RecorderTest, EndCollectsOtherThreadsChunks) {
  FakeClock clock;
  Recorder r(Recorder::Options{}, &clock);
  r.Begin(3);
  uint32_t other_tid = 0;
  std::thread t([&] {
    other_tid = Recorder::CurrentTid();
    r.ThreadName("worker");
    r.OpEnd(r.OpBegin("t", -1, nullptr, 0));
  });
  t.join();
  r.OpEnd(r.OpBegin("main", -1, nullptr, 0));
  r.End(nullptr, 3);
  std::vector<Chunk*> chunks;
  std::vector<RecordView> v = Drain(r, &chunks);
  EXPECT_EQ(v.size(), 3u);  // A thread name and two leaf operators.
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_TRUE(chunks[0]->tid == other_tid || chunks[1]->tid == other_tid);
  for (Chunk* c : chunks) r.Release(c);
}

TEST(RecorderTest, NewGenerationHandsOverStaleChunk) {
  FakeClock clock;
  Recorder r(Recorder::Options{}, &clock);
  r.Begin(1);
  r.Instant("a");
  r.Begin(2);  // Without End: the next append sees a stale chunk.
  r.Instant("b");
  r.End(nullptr, 2);
  std::deque<QueueItem> items = r.TakeQueued(absl::ZeroDuration());
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].chunk->generation, 1u);
  EXPECT_EQ(items[1].chunk->generation, 2u);
  for (QueueItem& i : items) r.Release(i.chunk);
}

TEST(RecorderTest, LongNamesAndManyInputsAreCapped) {
  FakeClock clock;
  Recorder r(Recorder::Options{}, &clock);
  r.Begin(1);
  std::string name(5000, 'x');
  std::vector<int64_t> dims(40, 2);
  std::vector<InputArg> inputs(100, InputArg{dims.data(), 40, "float"});
  r.OpBegin(name.c_str(), -1, inputs.data(), 100);
  r.End(nullptr, 1);
  std::vector<Chunk*> chunks;
  std::vector<RecordView> v = Drain(r, &chunks);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].name.size(), Recorder::kMaxNameBytes);
  ASSERT_EQ(v[0].inputs.size(), static_cast<size_t>(Recorder::kMaxInputs));
  EXPECT_EQ(v[0].inputs[0].ndim, Recorder::kMaxDims);
  for (Chunk* c : chunks) r.Release(c);
}

}  // namespace
}  // namespace vllm_profiler::probe
