#include "collector/trace_writer.h"

#include <cstdlib>
#include <string>

#include "common/filesystem_testing.h"
#include "common/gzip_file.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace vllm_profiler::collector {
namespace {

std::string Escaped(absl::string_view s) {
  std::string out;
  TraceWriter::EscapeTo(s, &out);
  return out;
}

TEST(TraceWriter, WritesEventsAndTopLevelKeys) {
  std::string out;
  TraceWriter w(std::make_unique<StringFile>(&out));
  w.BeginEvent();
  w.Key("ph");
  w.String("X");
  w.Key("ts");
  w.Micros(1234567);
  w.Key("dur");
  w.Micros(5);
  w.Key("args");
  w.BeginObject();
  w.Key("grid");
  w.BeginArray();
  w.Int(1);
  w.Int(-2);
  w.Uint(18446744073709551615ull);
  w.EndArray();
  w.Key("ok");
  w.Bool(true);
  w.Key("v");
  w.Double(0.5);
  w.Key("nan");
  w.Double(std::nan(""));
  w.EndObject();
  w.EndEvent();
  w.BeginEvent();
  w.Key("ph");
  w.String("i");
  w.EndEvent();
  w.EndEvents();
  w.Key("metadata");
  w.BeginObject();
  w.Key("complete");
  w.Bool(false);
  w.EndObject();
  ASSERT_TRUE(w.Finish().ok());
  EXPECT_EQ(out,
            "{\"traceEvents\":[{\"ph\":\"X\",\"ts\":1234.567,\"dur\":0.005,"
            "\"args\":{\"grid\":[1,-2,18446744073709551615],\"ok\":true,"
            "\"v\":0.5,\"nan\":null}},{\"ph\":\"i\"}],"
            "\"displayTimeUnit\":\"ns\",\"metadata\":{\"complete\":false}}\n");
  EXPECT_EQ(w.events_written(), 2u);
  EXPECT_EQ(w.bytes_written(), out.size());
}

TEST(TraceWriter, EmptyTraceIsValidJson) {
  std::string out;
  TraceWriter w(std::make_unique<StringFile>(&out));
  w.EndEvents();
  ASSERT_TRUE(w.Finish().ok());
  EXPECT_EQ(out, "{\"traceEvents\":[],\"displayTimeUnit\":\"ns\"}\n");
}

TEST(TraceWriter, MicrosFormatting) {
  std::string out;
  TraceWriter w(std::make_unique<StringFile>(&out));
  w.BeginEvent();
  w.Key("a");
  w.Micros(0);
  w.Key("b");
  w.Micros(-1);
  w.Key("c");
  w.Micros(-1500);
  w.Key("d");
  w.Micros(INT64_MIN);
  w.Key("e");
  w.Micros(1000);
  w.EndEvent();
  w.EndEvents();
  ASSERT_TRUE(w.Finish().ok());
  EXPECT_NE(out.find("\"a\":0.000,\"b\":-0.001,\"c\":-1.500,"
                     "\"d\":-9223372036854775.808,\"e\":1.000}"),
            std::string::npos)
      << out;
}

TEST(TraceWriter, EscapesControlQuotesAndInvalidUtf8) {
  EXPECT_EQ(Escaped("plain"), "plain");
  EXPECT_EQ(Escaped("a\"b\\c"), "a\\\"b\\\\c");
  EXPECT_EQ(Escaped("\n\r\t\b\f"), "\\n\\r\\t\\b\\f");
  EXPECT_EQ(Escaped(absl::string_view("\x00\x01\x1f\x7f", 4)),
            "\\u0000\\u0001\\u001f\\u007f");
  // Valid UTF-8 passes through.
  EXPECT_EQ(Escaped("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
            "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  // Invalid: lone continuation, truncated sequence, overlong, surrogate,
  // beyond U+10FFFF, 0xff.
  EXPECT_EQ(Escaped("\x80"), "\\ufffd");
  EXPECT_EQ(Escaped("\xe2\x82"), "\\ufffd\\ufffd");
  EXPECT_EQ(Escaped("\xc0\xaf"), "\\ufffd\\ufffd");
  EXPECT_EQ(Escaped("\xed\xa0\x80"), "\\ufffd\\ufffd\\ufffd");
  EXPECT_EQ(Escaped("\xf4\x90\x80\x80"), "\\ufffd\\ufffd\\ufffd\\ufffd");
  EXPECT_EQ(Escaped("x\xffy"), "x\\ufffdy");
}

TEST(TraceWriter, ArbitraryBytesStayValidJson) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  std::string out;
  TraceWriter w(std::make_unique<StringFile>(&out));
  w.BeginEvent();
  w.Key(all);
  w.String(all);
  w.EndEvent();
  w.EndEvents();
  ASSERT_TRUE(w.Finish().ok());
  nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_EQ(j["traceEvents"].size(), 1u);
}

TEST(TraceWriter, LongStringsCrossBufferBoundaries) {
  std::string big(300000, 'x');
  big[150000] = '"';
  big[299999] = '\xc3';  // Truncated sequence at the very end.
  std::string out;
  TraceWriter::Options options;
  options.buffer_bytes = 64 * 1024;
  auto file = std::make_unique<StringFile>(&out);
  StringFile* raw = file.get();
  TraceWriter w(std::move(file), options);
  for (int i = 0; i < 10; ++i) {
    w.BeginEvent();
    w.Key("name");
    w.String(big);
    w.EndEvent();
  }
  w.EndEvents();
  ASSERT_TRUE(w.Finish().ok());
  EXPECT_GT(raw->appends, 10);
  EXPECT_TRUE(raw->closed);
  nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  ASSERT_EQ(j["traceEvents"].size(), 10u);
  std::string expected = big.substr(0, 299999) + "\xef\xbf\xbd";
  EXPECT_EQ(j["traceEvents"][9]["name"].get<std::string>(), expected);
}

TEST(TraceWriter, FileErrorIsStickyAndReturnedByFinish) {
  FaultyFilesystem fs;
  fs.FailWritesAfter(100000);
  std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/full.json";
  auto file = fs.NewWritableFile(path);
  ASSERT_TRUE(file.ok());
  TraceWriter::Options options;
  options.buffer_bytes = 64 * 1024;
  TraceWriter w(std::move(*file), options);
  for (int i = 0; i < 100000; ++i) {
    w.BeginEvent();
    w.Key("name");
    w.String("some event name");
    w.EndEvent();
  }
  EXPECT_EQ(w.status().code(), absl::StatusCode::kResourceExhausted);
  w.EndEvents();
  absl::Status s = w.Finish();
  EXPECT_EQ(s.message(), "write " + path + ": No space left on device");
}

TEST(TraceWriter, GzipFileRoundTrips) {
  std::string compressed;
  TraceWriter w(NewGzipWritableFile(std::make_unique<StringFile>(&compressed)));
  for (int i = 0; i < 1000; ++i) {
    w.BeginEvent();
    w.Key("ts");
    w.Micros(i * 1000);
    w.EndEvent();
  }
  w.EndEvents();
  ASSERT_TRUE(w.Finish().ok());
  GzipDecompressor d;
  std::string plain;
  ASSERT_TRUE(d.Decompress(compressed, &plain).ok());
  EXPECT_TRUE(d.done());
  EXPECT_EQ(plain.size(), w.bytes_written());
  nlohmann::json j = nlohmann::json::parse(plain);
  EXPECT_EQ(j["traceEvents"].size(), 1000u);
  EXPECT_DOUBLE_EQ(j["traceEvents"][999]["ts"].get<double>(), 999.0);
}

}  // namespace
}  // namespace vllm_profiler::collector
