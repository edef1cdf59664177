#include "collector/trace_writer.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <utility>

namespace vllm_profiler::collector {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// 1 where a byte can be copied as is into a JSON string (printable ASCII
// other than '"' and '\\').
struct SafeTable {
  bool safe[256];
  constexpr SafeTable() : safe() {
    for (int c = 0; c < 256; ++c) {
      safe[c] = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
    }
  }
};
constexpr SafeTable kSafe;

// Length of the valid UTF-8 sequence starting at p (p[0] >= 0x80), or 0 when
// it is not valid (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
size_t Utf8SequenceLength(const unsigned char* p, size_t left) {
  unsigned char c = p[0];
  auto cont = [&](size_t i) { return i < left && (p[i] & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0;  // Overlong.
    if (c == 0xED && p[1] > 0x9F) return 0;  // Surrogate.
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && p[1] < 0x90) return 0;  // Overlong.
    if (c == 0xF4 && p[1] > 0x8F) return 0;  // > U+10FFFF.
    return 4;
  }
  return 0;
}

// SWAR test: does any byte of `w` need escaping (< 0x20, '"', '\\',
// >= 0x7f)?
inline bool WordNeedsEscape(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  auto has_zero = [](uint64_t x) { return (x - kOnes) & ~x & kHigh; };
  const uint64_t less_than_space = (w - kOnes * 0x20) & ~w & kHigh;
  return (less_than_space | has_zero(w ^ (kOnes * '"')) |
          has_zero(w ^ (kOnes * '\\')) | has_zero(w ^ (kOnes * 0x7f)) |
          (w & kHigh)) != 0;
}

// Escapes `s` into `out` (which has room for 6 * s.size() bytes); returns
// the end.
char* EscapeInto(absl::string_view s, char* out) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(s.data());
  const unsigned char* end = p + s.size();
  while (p < end) {
    const unsigned char* run = p;
    while (end - p >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      if (WordNeedsEscape(w)) break;
      p += 8;
    }
    while (p < end && kSafe.safe[*p]) ++p;
    if (p != run) {
      std::memcpy(out, run, p - run);
      out += p - run;
      if (p == end) break;
    }
    unsigned char c = *p;
    if (c < 0x80) {
      *out++ = '\\';
      switch (c) {
        case '"':
          *out++ = '"';
          break;
        case '\\':
          *out++ = '\\';
          break;
        case '\n':
          *out++ = 'n';
          break;
        case '\r':
          *out++ = 'r';
          break;
        case '\t':
          *out++ = 't';
          break;
        case '\b':
          *out++ = 'b';
          break;
        case '\f':
          *out++ = 'f';
          break;
        default:
          *out++ = 'u';
          *out++ = '0';
          *out++ = '0';
          *out++ = kHex[c >> 4];
          *out++ = kHex[c & 0xF];
      }
      ++p;
      continue;
    }
    size_t n = Utf8SequenceLength(p, end - p);
    if (n == 0) {
      std::memcpy(out, "\\ufffd", 6);
      out += 6;
      ++p;
    } else {
      std::memcpy(out, p, n);
      out += n;
      p += n;
    }
  }
  return out;
}

}  // namespace

TraceWriter::TraceWriter(std::unique_ptr<WritableFile> file, Options options)
    : file_(std::move(file)),
      cap_(std::max<size_t>(options.buffer_bytes, 64 * 1024)) {
  buf_.reset(new char[cap_]);
  static constexpr char kOpen[] = "{\"traceEvents\":[";
  PutRaw(kOpen, sizeof(kOpen) - 1);
  depth_ = 1;  // Inside the array (the outer object is depth 0).
}

TraceWriter::~TraceWriter() = default;

void TraceWriter::Flush() {
  if (pos_ == 0) return;
  if (status_.ok())
    status_ = file_->Append(absl::string_view(buf_.get(), pos_));
  flushed_ += pos_;
  pos_ = 0;
}

void TraceWriter::PutRaw(const char* p, size_t n) {
  if (n > cap_ - pos_) {
    Flush();
    if (n > cap_) {
      if (status_.ok()) status_ = file_->Append(absl::string_view(p, n));
      flushed_ += n;
      return;
    }
  }
  std::memcpy(buf_.get() + pos_, p, n);
  pos_ += n;
}

void TraceWriter::PutEscaped(absl::string_view s) {
  // Escape in slices so the worst case (6 bytes per input byte) always fits.
  constexpr size_t kSlice = 4096;
  while (!s.empty()) {
    size_t n = std::min(s.size(), kSlice);
    // Do not split a UTF-8 sequence between slices.
    if (n < s.size()) {
      size_t back = 0;
      while (back < 3 && back < n &&
             (static_cast<unsigned char>(s[n - back]) & 0xC0) == 0x80) {
        ++back;
      }
      if (back < n) n -= back;
    }
    Ensure(6 * n);
    pos_ = EscapeInto(s.substr(0, n), buf_.get() + pos_) - buf_.get();
    s.remove_prefix(n);
  }
}

void TraceWriter::EscapeTo(absl::string_view value, std::string* out) {
  size_t old = out->size();
  out->resize(old + 6 * value.size());
  char* end = EscapeInto(value, &(*out)[old]);
  out->resize(end - out->data());
}

void TraceWriter::Open(char c) {
  BeforeValue();
  Put(c);
  if (depth_ < kMaxDepth) ++depth_;
  need_comma_[depth_] = false;
}

void TraceWriter::Close(char c) {
  Put(c);
  if (depth_ > 0) --depth_;
}

void TraceWriter::BeginEvent() { Open('{'); }

void TraceWriter::EndEvent() {
  Close('}');
  ++events_;
}

void TraceWriter::EndEvents() {
  Close(']');
  need_comma_[0] = true;
  static constexpr char kUnit[] = ",\"displayTimeUnit\":\"ns\"";
  PutRaw(kUnit, sizeof(kUnit) - 1);
}

void TraceWriter::Key(absl::string_view key) {
  if (need_comma_[depth_]) Put(',');
  need_comma_[depth_] = true;
  Put('"');
  PutEscaped(key);
  Ensure(2);
  buf_[pos_++] = '"';
  buf_[pos_++] = ':';
  after_key_ = true;
}

void TraceWriter::KeyLiteral(const char* key, size_t n) {
  Ensure(n + 4);
  char* p = buf_.get() + pos_;
  if (need_comma_[depth_]) *p++ = ',';
  need_comma_[depth_] = true;
  *p++ = '"';
  std::memcpy(p, key, n);
  p += n;
  *p++ = '"';
  *p++ = ':';
  pos_ = p - buf_.get();
  after_key_ = true;
}

void TraceWriter::SafeString(absl::string_view value) {
  BeforeValue();
  if (value.size() + 2 > cap_ - pos_) Flush();
  if (value.size() + 2 > cap_) {
    Put('"');
    PutRaw(value.data(), value.size());
    Put('"');
    return;
  }
  char* p = buf_.get() + pos_;
  *p++ = '"';
  std::memcpy(p, value.data(), value.size());
  p += value.size();
  *p++ = '"';
  pos_ = p - buf_.get();
}

void TraceWriter::String(absl::string_view value) {
  BeforeValue();
  Put('"');
  PutEscaped(value);
  Put('"');
}

void TraceWriter::Int(int64_t value) {
  BeforeValue();
  Ensure(24);
  char* p = buf_.get() + pos_;
  pos_ = std::to_chars(p, p + 24, value).ptr - buf_.get();
}

void TraceWriter::Uint(uint64_t value) {
  BeforeValue();
  Ensure(24);
  char* p = buf_.get() + pos_;
  pos_ = std::to_chars(p, p + 24, value).ptr - buf_.get();
}

void TraceWriter::Double(double value) {
  if (!std::isfinite(value)) {
    Null();
    return;
  }
  BeforeValue();
  Ensure(32);
  char* p = buf_.get() + pos_;
  pos_ = std::to_chars(p, p + 32, value).ptr - buf_.get();
}

void TraceWriter::Bool(bool value) {
  BeforeValue();
  if (value) {
    PutRaw("true", 4);
  } else {
    PutRaw("false", 5);
  }
}

void TraceWriter::Null() {
  BeforeValue();
  PutRaw("null", 4);
}

char* AppendMicros(char* p, int64_t ns) {
  uint64_t abs_ns;
  if (ns < 0) {
    *p++ = '-';
    abs_ns = static_cast<uint64_t>(-(ns + 1)) + 1;
  } else {
    abs_ns = static_cast<uint64_t>(ns);
  }
  p = std::to_chars(p, p + 24, abs_ns / 1000).ptr;
  uint32_t frac = static_cast<uint32_t>(abs_ns % 1000);
  p[0] = '.';
  p[1] = static_cast<char>('0' + frac / 100);
  p[2] = static_cast<char>('0' + frac / 10 % 10);
  p[3] = static_cast<char>('0' + frac % 10);
  return p + 4;
}

void TraceWriter::Micros(int64_t ns) {
  BeforeValue();
  Ensure(32);
  pos_ = AppendMicros(buf_.get() + pos_, ns) - buf_.get();
}

void TraceWriter::BeginObject() { Open('{'); }
void TraceWriter::EndObject() { Close('}'); }
void TraceWriter::BeginArray() { Open('['); }
void TraceWriter::EndArray() { Close(']'); }

absl::Status TraceWriter::Finish() {
  if (finished_) return status_;
  finished_ = true;
  Put('}');
  Put('\n');
  Flush();
  absl::Status closed = file_->Close();
  if (status_.ok()) status_ = closed;
  return status_;
}

}  // namespace vllm_profiler::collector
