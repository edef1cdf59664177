#include "collector/trace_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "collector/capture_origin.h"
#include "collector/trace_time_shift.h"
#include "collector/trace_writer.h"
#include "common/gzip.h"
#include "common/gzip_file.h"
#include "common/logging.h"
#include "nlohmann/json.hpp"

namespace vllm_profiler::collector {
namespace {

constexpr char kTempPrefix[] = ".inprogress-";
constexpr size_t kMaxIdBytes = 200;
constexpr size_t kMaxPidsInName = 4;

constexpr char kRecoveredReason[] =
    "collector stopped while writing (recovered at start)";

// Where the last complete event of a partial TraceWriter file ends.
struct PartialScan {
  uint64_t end = 0;     // Bytes to keep.
  uint64_t events = 0;  // Complete events in them.
  uint64_t size = 0;    // Bytes read.
};

// Scans a partial `{"traceEvents":[{...},{...},...` file. Fails when it
// does not start like a trace (or is gzip: its tail cannot be cut cleanly).
absl::StatusOr<PartialScan> ScanPartialTrace(ReadableFile* file) {
  static constexpr char kOpen[] = "{\"traceEvents\":[";
  constexpr size_t kOpenLen = sizeof(kOpen) - 1;
  PartialScan scan;
  std::vector<char> buf(1 << 20);
  std::string head;
  int depth = 0;  // Inside the traceEvents array.
  bool in_string = false, escape = false, done = false;
  while (!done) {
    absl::StatusOr<size_t> n = file->Read(buf.data(), buf.size());
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    size_t i = 0;
    if (head.size() < kOpenLen) {
      const size_t take = std::min(*n, kOpenLen - head.size());
      head.append(buf.data(), take);
      i = take;
      if (head != absl::string_view(kOpen, head.size())) {
        return absl::DataLossError(absl::StrCat(
            "does not start like a trace (",
            head.size() >= 2 && static_cast<uint8_t>(head[0]) == 0x1f &&
                    static_cast<uint8_t>(head[1]) == 0x8b
                ? "gzip-compressed"
                : "unknown format",
            ")"));
      }
      if (head.size() == kOpenLen) scan.end = kOpenLen;
    }
    for (; i < *n; ++i) {
      const char c = buf[i];
      if (in_string) {
        if (escape) {
          escape = false;
        } else if (c == '\\') {
          escape = true;
        } else if (c == '"') {
          in_string = false;
        }
        continue;
      }
      if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth < 0) {  // The array closed: what follows is metadata.
          done = true;
          break;
        }
        if (depth == 0) {
          ++scan.events;
          scan.end = scan.size + i + 1;
        }
      }
    }
    scan.size += *n;
  }
  if (head.size() < kOpenLen) {
    return absl::DataLossError("shorter than a trace header");
  }
  return scan;
}

bool IdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

// "x.json" -> "x" (gzip false), "x.json.gz" -> "x" (gzip true).
bool SplitTraceFileName(const std::string& name, std::string* id, bool* gzip) {
  if (absl::EndsWith(name, ".json.gz")) {
    *id = name.substr(0, name.size() - 8);
    *gzip = true;
  } else if (absl::EndsWith(name, ".json")) {
    *id = name.substr(0, name.size() - 5);
    *gzip = false;
  } else {
    return false;
  }
  return TraceStore::IsValidId(*id);
}

// Streams `in` (gzip when `gzip`) through a TraceTimeShifter into `out`.
absl::Status CopyShifted(ReadableFile& in, WritableFile& out, bool gzip,
                         int64_t shift_ns) {
  TraceTimeShifter shifter(shift_ns);
  std::unique_ptr<GzipDecompressor> gunzip;
  if (gzip) gunzip = std::make_unique<GzipDecompressor>();
  std::vector<char> buf(1 << 20);
  std::string plain;
  std::string shifted;
  while (true) {
    absl::StatusOr<size_t> n = in.Read(buf.data(), buf.size());
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    absl::string_view chunk(buf.data(), *n);
    if (gunzip != nullptr) {
      plain.clear();
      absl::Status s = gunzip->Decompress(chunk, &plain);
      if (!s.ok()) return s;
      chunk = plain;
    }
    shifted.clear();
    absl::Status s = shifter.Feed(chunk, &shifted);
    if (s.ok()) s = out.Append(shifted);
    if (!s.ok()) return s;
  }
  shifted.clear();
  absl::Status s = shifter.Finish(&shifted);
  if (s.ok()) s = out.Append(shifted);
  return s;
}

}  // namespace

nlohmann::ordered_json TraceInfoToJsonValue(const v1::TraceInfo& info) {
  return nlohmann::ordered_json{
      {"id", info.id()},
      {"file_name", info.file_name()},
      {"size_bytes", info.size_bytes()},
      {"created_unix_ms", info.created_unix_ms()},
      {"capture_id", info.capture_id()},
      {"complete", info.complete()},
      {"num_events", info.num_events()},
      {"pids", std::vector<int64_t>(info.pids().begin(), info.pids().end())},
      {"error", info.error()},
      {"gzip", info.gzip()},
      {"origin", OriginName(info.origin())},
      {"reason", info.reason()}};
}

std::string TraceInfoToJson(const v1::TraceInfo& info) {
  return TraceInfoToJsonValue(info).dump(
      -1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

TraceStore::TraceStore(Options options, Filesystem* fs)
    : options_(std::move(options)), fs_(fs) {}

bool TraceStore::IsValidId(const std::string& id) {
  if (id.empty() || id.size() > kMaxIdBytes || id[0] == '.') return false;
  if (id.find("..") != std::string::npos) return false;
  return std::all_of(id.begin(), id.end(), IdChar);
}

std::string TraceStore::SanitizeRequestedName(const std::string& requested) {
  std::string base = requested;
  size_t slash = base.find_last_of('/');
  if (slash != std::string::npos) base = base.substr(slash + 1);
  if (absl::EndsWith(base, ".json.gz")) {
    base.resize(base.size() - 8);
  } else if (absl::EndsWith(base, ".gz")) {
    base.resize(base.size() - 3);
  } else if (absl::EndsWith(base, ".json")) {
    base.resize(base.size() - 5);
  }
  for (char& c : base) {
    if (!IdChar(c)) c = '_';
  }
  // No hidden names, no "..".
  while (!base.empty() && base[0] == '.') base[0] = '_';
  size_t dots;
  while ((dots = base.find("..")) != std::string::npos) base[dots] = '_';
  if (base.size() > kMaxIdBytes - 16) base.resize(kMaxIdBytes - 16);
  return base;
}

std::string TraceStore::BaseName(const std::vector<int64_t>& pids) {
  std::vector<int64_t> sorted = pids;
  std::sort(sorted.begin(), sorted.end());
  std::string name = "trace";
  for (size_t i = 0; i < sorted.size() && i < kMaxPidsInName; ++i) {
    if (i > 0) name += "_";
    absl::StrAppend(&name, sorted[i]);
  }
  if (sorted.size() > kMaxPidsInName) {
    absl::StrAppend(&name, "_and", sorted.size() - kMaxPidsInName, "more");
  }
  return name;
}

std::string TraceStore::PathOf(const std::string& file_name) const {
  return absl::StrCat(options_.dir, "/", file_name);
}

std::string TraceStore::MetaPathOf(const std::string& id) const {
  return absl::StrCat(options_.dir, "/.", id, ".meta");
}

void TraceStore::SetErrorLocked(const absl::Status& error) {
  last_error_ = std::string(error.message());
  VP_LOG(ERROR) << "trace store: " << error.message();
}

void TraceStore::RecordError(const absl::Status& error) {
  MutexLock lock(&mu_);
  SetErrorLocked(error);
}

absl::Status TraceStore::Init() {
  MutexLock lock(&mu_);
  absl::Status s = fs_->CreateDirs(options_.dir);
  if (!s.ok()) {
    SetErrorLocked(s);
    return s;
  }
  absl::StatusOr<std::vector<std::string>> names = fs_->ListDir(options_.dir);
  if (!names.ok()) {
    SetErrorLocked(names.status());
    return names.status();
  }
  std::vector<std::string> partial;
  for (const std::string& name : *names) {
    if (absl::StartsWith(name, kTempPrefix)) {
      partial.push_back(name);
      continue;
    }
    std::string id;
    bool gzip;
    if (!SplitTraceFileName(name, &id, &gzip)) continue;
    absl::StatusOr<FileStat> st = fs_->Stat(PathOf(name));
    if (!st.ok() || st->is_dir) continue;
    if (!st->is_regular) {
      VP_LOG(WARNING) << "trace store: not serving " << QuoteForMessage(name)
                      << ": not a regular file (a symlink?); the collector "
                         "only serves files it wrote";
      continue;
    }
    v1::TraceInfo info;
    // The sidecar is ours, but may be missing or damaged: fall back to what
    // the file itself tells.
    absl::StatusOr<std::string> meta =
        fs_->ReadSmallFile(MetaPathOf(id), 1 << 20);
    if (meta.ok()) {
      nlohmann::json j = nlohmann::json::parse(*meta, nullptr, false);
      if (j.is_object()) {
        try {
          info.set_capture_id(j.value("capture_id", ""));
          info.set_complete(j.value("complete", false));
          info.set_num_events(j.value("num_events", uint64_t{0}));
          info.set_error(j.value("error", ""));
          info.set_created_unix_ms(j.value("created_unix_ms", int64_t{0}));
          info.set_origin(OriginFromName(j.value("origin", "")));
          info.set_reason(j.value("reason", ""));
          if (j.contains("pids") && j["pids"].is_array()) {
            for (const auto& p : j["pids"]) {
              if (p.is_number_integer()) info.add_pids(p.get<int64_t>());
            }
          }
        } catch (const nlohmann::json::exception&) {
          info.Clear();
        }
      }
    }
    info.set_id(id);
    info.set_file_name(name);
    info.set_size_bytes(st->size);
    info.set_gzip(gzip);
    if (info.created_unix_ms() == 0)
      info.set_created_unix_ms(st->mtime_unix_ms);
    if (traces_.count(id) != 0) continue;  // Both x.json and x.json.gz.
    traces_[id] = std::move(info);
  }
  std::string recovered;
  for (const std::string& name : partial) {
    std::string id = RecoverLocked(name);
    if (!id.empty()) recovered = id;
  }
  ApplyRetentionLocked(recovered);
  return absl::OkStatus();
}

std::string TraceStore::RecoverLocked(const std::string& temp_name) {
  const absl::Time start = absl::Now();
  const std::string path = PathOf(temp_name);
  auto remove = [&](absl::string_view why) {
    VP_LOG(WARNING) << "removing partial trace " << temp_name
                    << " left by a stopped collector: " << why;
    fs_->Remove(path).IgnoreError();
    return std::string();
  };
  absl::StatusOr<FileStat> st = fs_->Stat(path);
  if (!st.ok()) return remove(st.status().message());
  absl::StatusOr<PartialScan> scan;
  {
    absl::StatusOr<std::unique_ptr<ReadableFile>> in = fs_->OpenForRead(path);
    if (!in.ok()) return remove(in.status().message());
    scan = ScanPartialTrace(in->get());
  }
  if (!scan.ok()) return remove(scan.status().message());
  const nlohmann::ordered_json metadata{
      {"producer", "vllm-profiler collector (recovered at start)"},
      {"complete", false},
      {"events_written", scan->events},
      {"errors", nlohmann::ordered_json::array({kRecoveredReason})},
      {"recovered_from", temp_name},
      {"recovered_bytes_dropped", scan->size - scan->end}};
  const std::string tail = absl::StrCat(
      "],\"displayTimeUnit\":\"ns\",\"metadata\":",
      metadata.dump(-1, ' ', false,
                    nlohmann::ordered_json::error_handler_t::replace),
      "}\n");
  // Cut after the last complete event and close the JSON. Plain POSIX: the
  // Filesystem seam has no truncate, and this runs once, at start.
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  bool ok = fd >= 0 && ::ftruncate(fd, static_cast<off_t>(scan->end)) == 0 &&
            ::lseek(fd, 0, SEEK_END) >= 0 &&
            ::write(fd, tail.data(), tail.size()) ==
                static_cast<ssize_t>(tail.size()) &&
            ::fsync(fd) == 0;
  const int err = errno;
  if (fd >= 0) ::close(fd);
  if (!ok) return remove(std::strerror(err));
  const std::string id = UniqueIdLocked("recovered");
  const std::string file_name = id + ".json";
  absl::Status s = fs_->Rename(path, PathOf(file_name));
  if (!s.ok()) return remove(s.message());
  v1::TraceInfo info;
  info.set_id(id);
  info.set_file_name(file_name);
  info.set_size_bytes(scan->end + tail.size());
  info.set_created_unix_ms(st->mtime_unix_ms);
  info.set_complete(false);
  info.set_num_events(scan->events);
  info.set_error(kRecoveredReason);
  absl::Status meta =
      fs_->WriteFileAtomically(MetaPathOf(id), TraceInfoToJson(info));
  if (!meta.ok()) SetErrorLocked(meta);
  traces_[id] = info;
  VP_LOG(WARNING) << "recovered partial trace " << temp_name << " as " << id
                  << ": " << scan->events << " events kept, "
                  << scan->size - scan->end << " trailing bytes dropped, in "
                  << absl::FormatDuration(absl::Now() - start)
                  << " (marked incomplete: " << kRecoveredReason << ")";
  return id;
}

absl::StatusOr<TraceStore::TempFile> TraceStore::CreateTempFile() {
  std::string path;
  {
    MutexLock lock(&mu_);
    path = PathOf(absl::StrCat(kTempPrefix, absl::ToUnixMillis(absl::Now()),
                               "-", ++temp_counter_, ".tmp"));
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      fs_->NewWritableFile(path);
  if (!file.ok()) {
    // The directory may have been removed after start-up: recreate once.
    if (absl::IsNotFound(file.status()) && fs_->CreateDirs(options_.dir).ok()) {
      file = fs_->NewWritableFile(path);
    }
    if (!file.ok()) {
      RecordError(file.status());
      return file.status();
    }
  }
  TempFile out;
  out.path = path;
  out.file =
      options_.gzip ? NewGzipWritableFile(std::move(*file)) : std::move(*file);
  return out;
}

absl::Status TraceStore::ShiftTimes(const std::string& temp_path,
                                    int64_t shift_ns) {
  absl::StatusOr<std::unique_ptr<ReadableFile>> in =
      fs_->OpenForRead(temp_path);
  if (!in.ok()) return in.status();
  absl::StatusOr<TempFile> out = CreateTempFile();
  if (!out.ok()) return out.status();
  absl::Status s = CopyShifted(**in, *out->file, options_.gzip, shift_ns);
  if (s.ok()) s = out->file->Close();
  if (s.ok()) s = fs_->Rename(out->path, temp_path);
  if (!s.ok()) {
    fs_->Remove(out->path).IgnoreError();
    VP_LOG(ERROR) << "trace times not shifted (events before the time base "
                     "keep negative ts): "
                  << s.message();
  }
  return s;
}

void TraceStore::Abandon(const std::string& temp_path,
                         const absl::Status& error) {
  fs_->Remove(temp_path).IgnoreError();
  if (!error.ok()) RecordError(error);
}

std::string TraceStore::UniqueIdLocked(const std::string& base) const {
  if (traces_.count(base) == 0) return base;
  for (int n = 2;; ++n) {
    std::string id = absl::StrCat(base, "-", n);
    if (traces_.count(id) == 0) return id;
  }
}

absl::StatusOr<v1::TraceInfo> TraceStore::Commit(const std::string& temp_path,
                                                 const CommitRequest& request) {
  MutexLock lock(&mu_);
  std::string base = SanitizeRequestedName(request.requested_name);
  if (base.empty() || !IsValidId(base)) base = BaseName(request.pids);
  const std::string id = UniqueIdLocked(base);
  const std::string file_name =
      absl::StrCat(id, options_.gzip ? ".json.gz" : ".json");
  absl::Status s = fs_->Rename(temp_path, PathOf(file_name));
  if (!s.ok()) {
    fs_->Remove(temp_path).IgnoreError();
    SetErrorLocked(s);
    return s;
  }
  v1::TraceInfo info;
  info.set_id(id);
  info.set_file_name(file_name);
  absl::StatusOr<FileStat> st = fs_->Stat(PathOf(file_name));
  info.set_size_bytes(st.ok() ? st->size : 0);
  // Strictly increasing, so "newest first" is exact even within a ms.
  int64_t now_ms = absl::ToUnixMillis(absl::Now());
  if (now_ms <= last_created_ms_) now_ms = last_created_ms_ + 1;
  last_created_ms_ = now_ms;
  info.set_created_unix_ms(now_ms);
  info.set_capture_id(request.capture_id);
  info.set_complete(request.complete);
  info.set_num_events(request.num_events);
  for (int64_t pid : request.pids) info.add_pids(pid);
  info.set_error(request.error);
  info.set_gzip(options_.gzip);
  info.set_origin(request.origin);
  info.set_reason(request.reason);
  absl::Status meta =
      fs_->WriteFileAtomically(MetaPathOf(id), TraceInfoToJson(info));
  if (!meta.ok()) SetErrorLocked(meta);  // The trace itself is fine.
  traces_[id] = info;
  ApplyRetentionLocked(id);
  return info;
}

void TraceStore::RemoveLocked(const std::string& id) {
  auto it = traces_.find(id);
  if (it == traces_.end()) return;
  absl::Status s = fs_->Remove(PathOf(it->second.file_name()));
  if (!s.ok() && !absl::IsNotFound(s)) SetErrorLocked(s);
  fs_->Remove(MetaPathOf(id)).IgnoreError();
  traces_.erase(it);
}

void TraceStore::ApplyRetentionLocked(const std::string& keep) {
  while (true) {
    uint64_t bytes = 0;
    for (const auto& [id, info] : traces_) bytes += info.size_bytes();
    if (traces_.size() <= options_.max_traces && bytes <= options_.max_bytes) {
      return;
    }
    const v1::TraceInfo* oldest = nullptr;
    for (const auto& [id, info] : traces_) {
      if (id == keep) continue;
      if (oldest == nullptr ||
          info.created_unix_ms() < oldest->created_unix_ms()) {
        oldest = &info;
      }
    }
    if (oldest == nullptr) return;
    VP_LOG(INFO) << "retention: deleting trace " << oldest->id();
    RemoveLocked(oldest->id());
  }
}

std::vector<v1::TraceInfo> TraceStore::List() const {
  MutexLock lock(&mu_);
  std::vector<v1::TraceInfo> out;
  out.reserve(traces_.size());
  for (const auto& [id, info] : traces_) out.push_back(info);
  std::sort(out.begin(), out.end(),
            [](const v1::TraceInfo& a, const v1::TraceInfo& b) {
              if (a.created_unix_ms() != b.created_unix_ms()) {
                return a.created_unix_ms() > b.created_unix_ms();
              }
              return a.id() > b.id();
            });
  return out;
}

absl::StatusOr<v1::TraceInfo> TraceStore::Find(const std::string& id) const {
  MutexLock lock(&mu_);
  auto it = IsValidId(id) ? traces_.find(id) : traces_.end();
  if (it == traces_.end()) {
    return absl::NotFoundError(
        absl::StrCat("no trace with id ", QuoteForMessage(id)));
  }
  return it->second;
}

absl::StatusOr<std::unique_ptr<ReadableFile>> TraceStore::Open(
    const std::string& id, v1::TraceInfo* info) const {
  MutexLock lock(&mu_);
  auto it = IsValidId(id) ? traces_.find(id) : traces_.end();
  if (it == traces_.end()) {
    return absl::NotFoundError(
        absl::StrCat("no trace with id ", QuoteForMessage(id)));
  }
  absl::StatusOr<std::unique_ptr<ReadableFile>> file =
      fs_->OpenForRead(PathOf(it->second.file_name()));
  if (!file.ok()) return file.status();
  if (info != nullptr) *info = it->second;
  return file;
}

absl::Status TraceStore::Delete(const std::string& id) {
  MutexLock lock(&mu_);
  if (!IsValidId(id) || traces_.count(id) == 0) {
    return absl::NotFoundError(
        absl::StrCat("no trace with id ", QuoteForMessage(id)));
  }
  RemoveLocked(id);
  return absl::OkStatus();
}

bool TraceStore::RoomForNewTrace(size_t pending, absl::Duration min_age) const {
  MutexLock lock(&mu_);
  const size_t total = traces_.size() + pending + 1;
  if (total <= options_.max_traces) return true;
  // The traces retention would delete, oldest first, must all be old enough.
  std::vector<int64_t> created;
  for (const auto& [id, info] : traces_)
    created.push_back(info.created_unix_ms());
  std::sort(created.begin(), created.end());
  const size_t evicted = total - options_.max_traces;
  if (evicted > created.size()) return false;
  const int64_t newest_evicted_ms = created[evicted - 1];
  return absl::Now() - absl::FromUnixMillis(newest_evicted_ms) >= min_age;
}

v1::DiskStatus TraceStore::Disk() const {
  MutexLock lock(&mu_);
  v1::DiskStatus d;
  d.set_trace_dir(options_.dir);
  uint64_t bytes = 0;
  for (const auto& [id, info] : traces_) bytes += info.size_bytes();
  d.set_bytes_used(bytes);
  d.set_max_bytes(options_.max_bytes);
  d.set_trace_count(static_cast<uint32_t>(traces_.size()));
  d.set_max_traces(options_.max_traces);
  d.set_last_error(last_error_);
  return d;
}

}  // namespace vllm_profiler::collector
