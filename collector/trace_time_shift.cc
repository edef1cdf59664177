#include "collector/trace_time_shift.h"

#include "absl/strings/str_cat.h"
#include "collector/trace_writer.h"

namespace vllm_profiler::collector {
namespace {

constexpr size_t kMaxKey = 16;  // Longer strings are never a key we act on.

// Any character of a JSON number, so a foreign form is read whole and
// rejected rather than cut.
bool IsNumberChar(char c) {
  return (c >= '0' && c <= '9') || c == '-' || c == '.' || c == 'e' ||
         c == 'E' || c == '+';
}

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

// "-12.345" -> -12345 (ns). Exactly TraceWriter::Micros's format, with 0-3
// decimals accepted.
bool ParseMicros(absl::string_view s, int64_t* ns) {
  bool negative = false;
  if (!s.empty() && s[0] == '-') {
    negative = true;
    s.remove_prefix(1);
  }
  const size_t dot = s.find('.');
  absl::string_view whole = s.substr(0, dot);
  absl::string_view frac =
      dot == absl::string_view::npos ? absl::string_view() : s.substr(dot + 1);
  if (whole.empty() || whole.size() > 15 || frac.size() > 3) return false;
  if (dot != absl::string_view::npos && frac.empty()) return false;
  int64_t v = 0;
  for (char c : whole) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  int64_t f = 0;
  for (size_t i = 0; i < 3; ++i) {
    const char c = i < frac.size() ? frac[i] : '0';
    if (c < '0' || c > '9') return false;
    f = f * 10 + (c - '0');
  }
  *ns = (v * 1000 + f) * (negative ? -1 : 1);
  return true;
}

}  // namespace

absl::Status TraceTimeShifter::EmitNumber(std::string* out) {
  in_number_ = false;
  int64_t ns = 0;
  if (!ParseMicros(number_, &ns)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected ts value \"", number_.substr(0, 32), "\""));
  }
  char buf[32];
  out->append(buf, AppendMicros(buf, ns + shift_ns_) - buf);
  number_.clear();
  ++shifted_;
  return absl::OkStatus();
}

absl::Status TraceTimeShifter::Feed(absl::string_view in, std::string* out) {
  out->reserve(out->size() + in.size() + in.size() / 64);
  size_t copy_from = 0;  // Start of the pending verbatim run.
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (in_number_) {
      if (IsNumberChar(c)) {
        if (number_.size() > 24) {
          return absl::InvalidArgumentError("ts value too long");
        }
        number_.push_back(c);
        copy_from = i + 1;
        continue;
      }
      if (number_.empty() && IsSpace(c)) {
        out->push_back(c);
        copy_from = i + 1;
        continue;
      }
      if (c != ',' && c != '}' && !IsSpace(c)) {
        return absl::InvalidArgumentError(
            absl::StrCat("unexpected ts value \"", number_.substr(0, 32),
                         std::string(1, c), "\""));
      }
      absl::Status s = EmitNumber(out);
      if (!s.ok()) return s;
      copy_from = i;
    }
    if (in_string_) {
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
      } else if (last_string_.size() < kMaxKey) {
        last_string_.push_back(c);
      } else {
        last_string_clipped_ = true;
      }
      if (escape_) last_string_clipped_ = true;  // Keys we act on have none.
      continue;
    }
    switch (c) {
      case '"':
        in_string_ = true;
        last_string_.clear();
        last_string_clipped_ = false;
        break;
      case '{':
      case '[':
        ++depth_;
        if (c == '[' && depth_ == 2 && top_key_ == "traceEvents") {
          in_events_ = true;
        }
        break;
      case '}':
      case ']':
        if (depth_ == 2) in_events_ = false;
        --depth_;
        break;
      case ':': {
        const bool key_ok = !last_string_clipped_;
        if (depth_ == 1) top_key_ = key_ok ? last_string_ : std::string();
        if (depth_ == 3 && in_events_ && key_ok && last_string_ == "ts") {
          out->append(in.data() + copy_from, i + 1 - copy_from);
          copy_from = i + 1;
          in_number_ = true;
          number_.clear();
        }
        break;
      }
      default:
        break;
    }
  }
  if (!in_number_) out->append(in.data() + copy_from, in.size() - copy_from);
  return absl::OkStatus();
}

absl::Status TraceTimeShifter::Finish(std::string* out) {
  if (in_number_ && !number_.empty()) {
    absl::Status s = EmitNumber(out);
    if (!s.ok()) return s;
  }
  if (in_number_ || in_string_ || depth_ != 0) {
    return absl::InvalidArgumentError("trace ends inside a JSON value");
  }
  return absl::OkStatus();
}

}  // namespace vllm_profiler::collector
