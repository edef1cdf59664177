#include "collector/http_frontend.h"

#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/gzip_file.h"
#include "common/prometheus.h"

namespace vllm_profiler::collector {
namespace {

std::string HtmlEscape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Streams a trace file, optionally converting between plain and gzip.
class TraceBodySource : public http::BodySource {
 public:
  enum class Mode { kRaw, kCompress, kDecompress };
  TraceBodySource(std::unique_ptr<ReadableFile> file, Mode mode, int64_t size)
      : file_(std::move(file)), mode_(mode), size_(size) {
    if (mode_ == Mode::kCompress)
      compress_ = std::make_unique<GzipCompressor>();
    if (mode_ == Mode::kDecompress) {
      decompress_ = std::make_unique<GzipDecompressor>();
    }
  }
  int64_t size() const override { return mode_ == Mode::kRaw ? size_ : -1; }

  absl::StatusOr<size_t> Read(char* buffer, size_t capacity) override {
    if (mode_ == Mode::kRaw) return file_->Read(buffer, capacity);
    while (pending_.size() - pos_ < capacity && !eof_) {
      if (pos_ > 0) {
        pending_.erase(0, pos_);
        pos_ = 0;
      }
      raw_.resize(256 * 1024);
      absl::StatusOr<size_t> n = file_->Read(&raw_[0], raw_.size());
      if (!n.ok()) return n.status();
      if (*n == 0) eof_ = true;
      absl::string_view piece(raw_.data(), *n);
      absl::Status s = mode_ == Mode::kCompress
                           ? compress_->Compress(piece, eof_, &pending_)
                           : decompress_->Decompress(piece, &pending_);
      if (!s.ok()) return s;
    }
    size_t n = std::min(capacity, pending_.size() - pos_);
    std::memcpy(buffer, pending_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  std::unique_ptr<ReadableFile> file_;
  const Mode mode_;
  const int64_t size_;
  std::unique_ptr<GzipCompressor> compress_;
  std::unique_ptr<GzipDecompressor> decompress_;
  std::string raw_;
  std::string pending_;
  size_t pos_ = 0;
  bool eof_ = false;
};

http::Response NotFound() {
  return http::Response::Text(404, "trace not found\n");
}

}  // namespace

HttpFrontend::HttpFrontend(TraceStore* store, CaptureManager* manager,
                           ProbeServiceImpl* probes, std::string version)
    : store_(store),
      manager_(manager),
      probes_(probes),
      version_(std::move(version)) {}

http::Response HttpFrontend::Handle(const http::Request& request) const {
  if (request.method != "GET") {
    http::Response r = http::Response::Text(405, "only GET is supported\n");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  const std::string& path = request.path;
  if (path == "/" || path == "/index.html") return Index();
  if (path == "/traces" || path == "/traces/") return TraceList();
  if (path == "/healthz") return http::Response::Text(200, "ok\n");
  if (path == "/metrics") {
    http::Response r = http::Response::Text(200, Metrics());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  }
  constexpr absl::string_view kPrefix = "/traces/";
  if (absl::StartsWith(path, kPrefix)) {
    return Download(request, path.substr(kPrefix.size()));
  }
  return http::Response::Text(404, "not found\n");
}

http::Response HttpFrontend::Download(const http::Request& request,
                                      const std::string& name) const {
  std::string id = name;
  bool as_gz_file = false;
  if (absl::EndsWith(id, ".json.gz")) {
    id.resize(id.size() - 8);
    as_gz_file = true;
  } else if (absl::EndsWith(id, ".json")) {
    id.resize(id.size() - 5);
  }
  v1::TraceInfo info;
  absl::StatusOr<std::unique_ptr<ReadableFile>> file = store_->Open(id, &info);
  if (!file.ok()) {
    if (absl::IsNotFound(file.status())) return NotFound();
    return http::Response::Text(500,
                                absl::StrCat(file.status().message(), "\n"));
  }
  using Mode = TraceBodySource::Mode;
  http::Response r;
  r.status = 200;
  const int64_t size = static_cast<int64_t>(info.size_bytes());
  if (as_gz_file) {
    r.content_type = "application/gzip";
    r.headers.emplace_back(
        "Content-Disposition",
        absl::StrCat("attachment; filename=\"", id, ".json.gz\""));
    r.stream = std::make_shared<TraceBodySource>(
        std::move(*file), info.gzip() ? Mode::kRaw : Mode::kCompress, size);
    return r;
  }
  r.content_type = "application/json";
  r.headers.emplace_back(
      "Content-Disposition",
      absl::StrCat("attachment; filename=\"", id, ".json\""));
  r.headers.emplace_back("Vary", "Accept-Encoding");
  if (request.AcceptsGzip()) {
    if (info.gzip()) {
      r.headers.emplace_back("Content-Encoding", "gzip");
      r.stream =
          std::make_shared<TraceBodySource>(std::move(*file), Mode::kRaw, size);
    } else {
      r.gzip = true;  // The server compresses on the fly.
      r.stream =
          std::make_shared<TraceBodySource>(std::move(*file), Mode::kRaw, size);
    }
    return r;
  }
  r.stream = std::make_shared<TraceBodySource>(
      std::move(*file), info.gzip() ? Mode::kDecompress : Mode::kRaw, size);
  return r;
}

http::Response HttpFrontend::TraceList() const {
  nlohmann::ordered_json traces = nlohmann::ordered_json::array();
  for (const v1::TraceInfo& info : store_->List()) {
    traces.push_back(TraceInfoToJsonValue(info));
  }
  nlohmann::ordered_json body{{"traces", std::move(traces)}};
  return http::Response::Json(
      200, body.dump(-1, ' ', false,
                     nlohmann::ordered_json::error_handler_t::replace) +
               "\n");
}

http::Response HttpFrontend::Index() const {
  std::string html = absl::StrCat(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
      "<title>vllm-profiler traces</title>"
      "<style>body{font-family:sans-serif}td,th{padding:2px 10px;"
      "text-align:left}</style></head><body>\n"
      "<h1>vllm-profiler traces</h1>\n"
      "<p>Open a downloaded trace in <a href=\"https://ui.perfetto.dev\">"
      "ui.perfetto.dev</a> or chrome://tracing.</p>\n");
  std::vector<v1::TraceInfo> traces = store_->List();
  if (traces.empty()) {
    html += "<p>No traces yet.</p>\n";
  } else {
    html +=
        "<table>\n<tr><th>trace</th><th>created (UTC)</th><th>size</th>"
        "<th>events</th><th>pids</th><th>complete</th><th>download</th>"
        "</tr>\n";
    for (const v1::TraceInfo& t : traces) {
      std::string pids;
      for (int64_t pid : t.pids()) {
        if (!pids.empty()) pids += " ";
        absl::StrAppend(&pids, pid);
      }
      const std::string id = HtmlEscape(t.id());
      absl::StrAppend(
          &html, "<tr><td>", id, "</td><td>",
          absl::FormatTime("%Y-%m-%d %H:%M:%S",
                           absl::FromUnixMillis(t.created_unix_ms()),
                           absl::UTCTimeZone()),
          "</td><td>", absl::StrFormat("%.1f MiB", t.size_bytes() / 1048576.0),
          "</td><td>", t.num_events(), "</td><td>", pids, "</td><td>",
          t.complete() ? "yes" : "<b>no</b>",
          t.error().empty() ? ""
                            : absl::StrCat(" (", HtmlEscape(t.error()), ")"),
          "</td><td><a href=\"/traces/", id,
          ".json\">json</a> "
          "<a href=\"/traces/",
          id, ".json.gz\">json.gz</a></td></tr>\n");
    }
    html += "</table>\n";
  }
  v1::DiskStatus disk = store_->Disk();
  absl::StrAppend(&html, "<p>", disk.trace_count(), " of at most ",
                  disk.max_traces(), " traces, ",
                  absl::StrFormat("%.1f", disk.bytes_used() / 1048576.0),
                  " MiB in ", HtmlEscape(disk.trace_dir()), ".");
  if (!disk.last_error().empty()) {
    absl::StrAppend(&html, " <b>Last error: ", HtmlEscape(disk.last_error()),
                    "</b>");
  }
  absl::StrAppend(&html,
                  "</p>\n<p><a href=\"/traces\">JSON list</a> · "
                  "<a href=\"/metrics\">metrics</a> · collector ",
                  HtmlEscape(version_), "</p>\n</body></html>\n");
  return http::Response::Html(200, std::move(html));
}

std::string HttpFrontend::Metrics() const {
  v1::DiskStatus disk = store_->Disk();
  PrometheusText m("vllm_profiler_");
  m.Counter("events_received_total", "Events received from probes.",
            probes_ ? probes_->events_received() : 0);
  m.Counter("batches_received_total", "Event batches received from probes.",
            probes_ ? probes_->batches_received() : 0);
  m.Counter("events_dropped_total", "Events the probes reported as dropped.",
            probes_ ? probes_->events_dropped() : 0);
  m.Counter("probe_streams_rejected_total",
            "Probe streams ended with INVALID_ARGUMENT.",
            probes_ ? probes_->streams_rejected() : 0);
  m.Counter("captures_refused_total",
            "Captures started by a probe refused to protect young traces.",
            manager_ ? manager_->captures_refused() : 0);
  m.Counter(
      "probe_streams_refused_total",
      "Probe streams refused with RESOURCE_EXHAUSTED (--max_probe_streams).",
      probes_ ? probes_->streams_refused() : 0);
  m.Counter("probe_hello_timeouts_total",
            "Probe streams cancelled for sending no Hello in time.",
            probes_ ? probes_->hello_timeouts() : 0);
  m.Gauge("probes_connected", "Connected probes.",
          probes_ ? probes_->probes_connected() : 0);
  m.Counter("traces_written_total", "Traces written since start.",
            manager_ ? manager_->traces_written() : 0);
  m.Counter("trace_bytes_written_total",
            "Bytes of trace files written since start.",
            manager_ ? manager_->trace_bytes_written() : 0);
  m.Counter("captures_failed_total",
            "Captures that produced no trace (e.g. disk full).",
            manager_ ? manager_->captures_failed() : 0);
  m.Gauge("traces_stored", "Traces in the directory.", disk.trace_count());
  m.Gauge("trace_dir_bytes", "Bytes used by stored traces.", disk.bytes_used());
  m.Gauge("trace_dir_error",
          "1 when the last write to the trace directory failed.",
          disk.last_error().empty() ? 0 : 1);
  return m.Take();
}

}  // namespace vllm_profiler::collector
