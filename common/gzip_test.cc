#include "common/gzip.h"

#include <string>

#include "gtest/gtest.h"

namespace vllm_profiler {
namespace {

TEST(Gzip, RoundTripInPieces) {
  std::string input;
  for (int i = 0; i < 100000; ++i) input += "event " + std::to_string(i) + ",";
  GzipCompressor c;
  std::string compressed;
  for (size_t off = 0; off < input.size(); off += 7777) {
    ASSERT_TRUE(c.Compress(absl::string_view(input).substr(off, 7777), false,
                           &compressed)
                    .ok());
  }
  ASSERT_TRUE(c.Compress({}, true, &compressed).ok());
  EXPECT_LT(compressed.size(), input.size() / 4);
  EXPECT_EQ(static_cast<unsigned char>(compressed[0]), 0x1f);

  GzipDecompressor d;
  std::string out;
  for (size_t off = 0; off < compressed.size(); off += 1000) {
    ASSERT_TRUE(
        d.Decompress(absl::string_view(compressed).substr(off, 1000), &out)
            .ok());
  }
  EXPECT_TRUE(d.done());
  EXPECT_EQ(out, input);
}

TEST(Gzip, CorruptInputIsDataLoss) {
  GzipDecompressor d;
  std::string out;
  absl::Status s = d.Decompress("this is not gzip at all", &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(s.message(), "corrupt gzip data: incorrect header check");
}

std::string Compressed(const std::string& in) {
  GzipCompressor c;
  std::string out;
  EXPECT_TRUE(c.Compress(in, true, &out).ok());
  return out;
}

TEST(Gunzip, WholeStream) {
  const std::string input(300000, 'x');
  const std::string gz = Compressed(input);
  EXPECT_TRUE(LooksGzipped(gz));
  EXPECT_FALSE(LooksGzipped(input));
  absl::StatusOr<std::string> out = Gunzip(gz);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, input);
}

TEST(Gunzip, TruncatedStreamIsDataLoss) {
  const std::string gz = Compressed("some text that compresses");
  absl::StatusOr<std::string> out = Gunzip(gz.substr(0, gz.size() - 4));
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(out.status().message(), "truncated gzip stream");
}

TEST(Gunzip, OutputBeyondTheBoundIsRefused) {
  const std::string gz = Compressed(std::string(1 << 20, 'z'));
  absl::StatusOr<std::string> out = Gunzip(gz, 1000);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(out.status().message(), "gzip data expands beyond 1000 bytes");
}

}  // namespace
}  // namespace vllm_profiler
