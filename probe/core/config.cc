#include "probe/core/config.h"

#include <algorithm>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace vllm_profiler::probe {
namespace {

// Quotes at most 64 bytes of an untrusted value for a log line, replacing
// control characters so the line stays one line.
std::string Quote(absl::string_view value) {
  std::string out = "'";
  for (size_t i = 0; i < value.size() && i < 64; ++i) {
    const unsigned char c = value[i];
    out.push_back(c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c));
  }
  if (value.size() > 64) out += "...";
  out += "'";
  return out;
}

// VLLM_PROFILER_FLIGHT and VLLM_PROFILER_FLIGHT_STEPS; a bad value keeps
// the default and adds one problem line.
void ParseFlight(const std::function<const char*(const char*)>& get,
                 ProbeConfig* c, std::vector<std::string>* problems) {
  auto problem = [&](std::string line) {
    if (problems != nullptr) problems->push_back(std::move(line));
  };
  if (const char* v = get("VLLM_PROFILER_FLIGHT"); v != nullptr && *v) {
    const absl::string_view level = absl::StripAsciiWhitespace(v);
    if (absl::EqualsIgnoreCase(level, "steps")) {
      c->flight = FlightLevel::kSteps;
    } else if (absl::EqualsIgnoreCase(level, "off")) {
      c->flight = FlightLevel::kOff;
    } else if (absl::EqualsIgnoreCase(level, "gpu")) {
      if (c->gpu) {
        c->flight = FlightLevel::kGpu;
      } else {
        c->flight = FlightLevel::kSteps;
        problem(
            "VLLM_PROFILER_FLIGHT=gpu needs GPU activity, which "
            "VLLM_PROFILER_GPU turns off; recording steps only");
      }
    } else {
      problem(absl::StrCat("VLLM_PROFILER_FLIGHT=", Quote(v),
                           " is not steps, gpu or off; using steps"));
    }
  }
  if (const char* v = get("VLLM_PROFILER_FLIGHT_STEPS"); v != nullptr) {
    absl::StatusOr<uint64_t> n =
        ParseUnsigned("VLLM_PROFILER_FLIGHT_STEPS", v, kMaxFlightSteps);
    if (!n.ok()) {
      problem(absl::StrCat(n.status().message(), "; using ", c->flight_steps));
    } else if (*n < 2) {
      problem(absl::StrCat("VLLM_PROFILER_FLIGHT_STEPS=", Quote(v),
                           " must be at least 2; using ", c->flight_steps));
    } else if (*n * kFlightStepBytes > c->max_buffer_bytes) {
      problem(absl::StrCat("VLLM_PROFILER_FLIGHT_STEPS=", *n, " needs ",
                           (*n * kFlightStepBytes) >> 20,
                           " MiB, more than the probe's memory bound "
                           "(VLLM_PROFILER_MAX_BUFFER_MB=",
                           c->max_buffer_bytes >> 20, "); using ",
                           c->flight_steps));
    } else {
      c->flight_steps = static_cast<uint32_t>(*n);
    }
  }
  // The GPU ring shares the memory bound with the step ring.
  const uint64_t steps_bytes = c->flight_steps * kFlightStepBytes;
  const uint64_t room =
      c->max_buffer_bytes > steps_bytes ? c->max_buffer_bytes - steps_bytes : 0;
  if (const char* v = get("VLLM_PROFILER_FLIGHT_GPU_BYTES"); v != nullptr) {
    absl::StatusOr<uint64_t> n =
        ParseUnsigned("VLLM_PROFILER_FLIGHT_GPU_BYTES", v, uint64_t{1} << 40);
    if (!n.ok()) {
      problem(
          absl::StrCat(n.status().message(), "; using ", c->flight_gpu_bytes));
    } else if (*n < kMinFlightGpuBytes) {
      problem(absl::StrCat("VLLM_PROFILER_FLIGHT_GPU_BYTES=", Quote(v),
                           " must be at least ", kMinFlightGpuBytes,
                           " (64 KiB); using ", c->flight_gpu_bytes));
    } else if (*n > room) {
      const uint64_t use = std::min(c->flight_gpu_bytes, room);
      problem(absl::StrCat("VLLM_PROFILER_FLIGHT_GPU_BYTES=", *n,
                           " with the step ring's ", steps_bytes >> 10,
                           " KiB is more than the probe's memory bound "
                           "(VLLM_PROFILER_MAX_BUFFER_MB=",
                           c->max_buffer_bytes >> 20, "); using ", use));
      c->flight_gpu_bytes = use;
    } else {
      c->flight_gpu_bytes = *n;
    }
  }
  // The default must fit a small bound too; below the minimum, no GPU ring.
  c->flight_gpu_bytes = std::min(c->flight_gpu_bytes, room);
  if (c->flight == FlightLevel::kGpu &&
      c->flight_gpu_bytes < kMinFlightGpuBytes) {
    problem(absl::StrCat(
        "VLLM_PROFILER_FLIGHT=gpu: no room for a GPU ring of at least 64 KiB "
        "beside the step ring under VLLM_PROFILER_MAX_BUFFER_MB=",
        c->max_buffer_bytes >> 20, "; recording steps only"));
    c->flight = FlightLevel::kSteps;
  }
}

}  // namespace

std::string ProbeConfig::Target() const {
  if (!address.empty()) return address;
  return absl::StrCat("unix:", socket_path);
}

absl::StatusOr<uint64_t> ParseUnsigned(absl::string_view name,
                                       absl::string_view value, uint64_t max) {
  absl::string_view v = absl::StripAsciiWhitespace(value);
  uint64_t out = 0;
  if (v.empty() || v[0] == '-' || v[0] == '+' || !absl::SimpleAtoi(v, &out)) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, "=", Quote(value), " is not a non-negative integer"));
  }
  if (out > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, "=", Quote(value), " is larger than ", max));
  }
  return out;
}

absl::StatusOr<bool> ParseBool(absl::string_view name,
                               absl::string_view value) {
  const std::string v =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(value));
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  return absl::InvalidArgumentError(
      absl::StrCat(name, "=", Quote(value), " is not a boolean (1 or 0)"));
}

namespace {

// Reads typed variables; a bad value keeps the field's value and adds one
// problem line.
class EnvReader {
 public:
  EnvReader(const EnvGetter& getenv, std::vector<std::string>* problems)
      : getenv_(getenv), problems_(problems) {}

  template <typename T>
  void Num(const char* name, uint64_t max, T* field) {
    const char* v = getenv_(name);
    if (v == nullptr) return;
    absl::StatusOr<uint64_t> r = ParseUnsigned(name, v, max);
    if (r.ok()) {
      *field = static_cast<T>(*r);
    } else {
      Problem(absl::StrCat(r.status().message(), "; using ", *field));
    }
  }
  void Flag(const char* name, bool* field) {
    const char* v = getenv_(name);
    if (v == nullptr) return;
    absl::StatusOr<bool> r = ParseBool(name, v);
    if (r.ok()) {
      *field = *r;
    } else {
      Problem(
          absl::StrCat(r.status().message(), "; using ", *field ? "1" : "0"));
    }
  }
  void Str(const char* name, std::string* field) {
    const char* v = getenv_(name);
    if (v != nullptr && *v != '\0') *field = v;
  }
  void Rank(const char* name, int32_t* field) {
    const char* v = getenv_(name);
    if (v == nullptr) return;
    absl::StatusOr<uint64_t> r = ParseUnsigned(name, v, 1 << 30);
    if (r.ok()) {
      *field = static_cast<int32_t>(*r);
    } else {
      Problem(absl::StrCat(r.status().message(), "; rank left unknown"));
    }
  }
  void Problem(std::string line) {
    if (problems_ != nullptr) problems_->push_back(std::move(line));
  }

 private:
  const EnvGetter& getenv_;
  std::vector<std::string>* const problems_;
};

void ReadWindow(EnvReader& env, ProbeConfig& c) {
  env.Flag("VLLM_PROFILER_ENABLED", &c.enabled);
  constexpr uint64_t kMaxU32 = std::numeric_limits<uint32_t>::max();
  env.Num("VLLM_PROFILER_START_STEP", kMaxU32, &c.start_step);
  if (c.start_step == 0) {
    env.Problem(
        "VLLM_PROFILER_START_STEP='0' must be at least 1 (steps are "
        "1-based); using 1");
    c.start_step = 1;
  }
  env.Num("VLLM_PROFILER_NUM_STEPS", kMaxU32, &c.num_steps);
  env.Num("VLLM_PROFILER_DURATION_MS", kMaxU32, &c.duration_ms);
  env.Flag("VLLM_PROFILER_RECORD_SHAPES", &c.record_shapes);
  env.Flag("VLLM_PROFILER_GPU", &c.gpu);
  env.Str("VLLM_TORCH_PROFILE", &c.requested_name);
}

void ReadTransportAndMemory(EnvReader& env, ProbeConfig& c) {
  env.Str("VLLM_PROFILER_SOCKET", &c.socket_path);
  // sockaddr_un holds 107 bytes and a NUL: a longer path cannot connect.
  if (c.socket_path.size() > 107) {
    env.Problem(absl::StrCat(
        "VLLM_PROFILER_SOCKET is ", c.socket_path.size(),
        " bytes long; a Unix socket path holds at most 107, so the collector "
        "cannot be reached there"));
  }
  env.Str("VLLM_PROFILER_ADDRESS", &c.address);
  uint64_t mb = c.max_buffer_bytes >> 20;
  env.Num("VLLM_PROFILER_MAX_BUFFER_MB", 1 << 20, &mb);
  if (mb == 0) {
    env.Problem("VLLM_PROFILER_MAX_BUFFER_MB='0' must be at least 1; using 1");
    mb = 1;
  }
  c.max_buffer_bytes = mb << 20;
}

void ReadLogAndClock(EnvReader& env, ProbeConfig& c) {
  env.Str("VLLM_PROFILER_LOG", &c.log_level);
  if (!c.log_level.empty()) {
    static constexpr const char* kLevels[] = {"info", "debug", "quiet", "off"};
    bool known = false;
    for (const char* l : kLevels)
      known = known || absl::EqualsIgnoreCase(c.log_level, l);
    if (!known) {
      env.Problem(absl::StrCat("VLLM_PROFILER_LOG=", Quote(c.log_level),
                               " is not info, debug, quiet or off; using "
                               "info"));
    }
  }
  std::string clock;
  env.Str("VLLM_PROFILER_CLOCK", &clock);
  if (absl::EqualsIgnoreCase(clock, "monotonic")) {
    c.tsc_clock = false;
  } else if (!clock.empty() && !absl::EqualsIgnoreCase(clock, "auto")) {
    env.Problem(absl::StrCat("VLLM_PROFILER_CLOCK=", Quote(clock),
                             " is not auto or monotonic; using auto"));
  }
}

void ReadIdentity(EnvReader& env, ProbeConfig& c) {
  env.Str("POD_NAME", &c.pod_name);
  env.Str("POD_NAMESPACE", &c.pod_namespace);
  env.Str("NODE_NAME", &c.node_name);
  env.Str("CONTAINER_NAME", &c.container_name);
  env.Rank("RANK", &c.rank);
  env.Rank("LOCAL_RANK", &c.local_rank);
  env.Rank("WORLD_SIZE", &c.world_size);
}

}  // namespace

ProbeConfig ParseProbeConfig(const EnvGetter& getenv,
                             std::vector<std::string>* problems) {
  ProbeConfig c;
  EnvReader env(getenv, problems);
  // The order of the problem lines follows this order.
  ReadWindow(env, c);
  ReadTransportAndMemory(env, c);
  ReadLogAndClock(env, c);
  ParseFlight(getenv, &c, problems);
  ReadIdentity(env, c);
  return c;
}

}  // namespace vllm_profiler::probe
