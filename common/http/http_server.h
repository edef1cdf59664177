// A small HTTP/1.1 server on Boost.Beast + Asio, optionally over TLS.
//
// Used by the collector (trace downloads, metrics) and the webhook
// (AdmissionReview over TLS). All HTTP parsing is Beast's; this file adds
// the policy: limits, timeouts, keep-alive, HEAD, streamed bodies, TLS with
// certificate reload, graceful shutdown.
//
//   HttpServer::Options options;
//   options.port = 0;                       // any free port
//   auto server = HttpServer::Start(options, [](const Request& req) {
//     if (req.path == "/healthz") return Response::Text(200, "ok\n");
//     return Response::Text(404, "not found\n");
//   });
//   int port = (*server)->port();
//
// Threading: `Options::threads` threads run the connections; the handler is
// called on them, concurrently for different connections, so it must be
// thread-safe. A handler may block (it holds up only its own connection), but
// long work belongs elsewhere. Start()/port()/Shutdown() may be called from
// any thread but not from the handler.
//
// Streaming: a Response may carry a BodySource instead of a string body
// (Response::File() is one). The server pulls it in `stream_chunk_bytes`
// pieces, optionally gzip-compressing on the fly (chunked transfer encoding),
// so a multi-gigabyte file never sits in memory.
//
// Errors: a request that Beast cannot parse gets 400 and the connection is
// closed; a body over `max_body_bytes` gets 413; a method the server does not
// route gets 405. After such an early answer the server keeps reading and
// discarding what the peer still sends (up to `linger_bytes` and
// `linger_timeout`) before closing, so a client that writes its whole body
// before reading (Python's http.client) sees the status instead of a reset.
// A plain-HTTP client on a TLS port fails the handshake and is disconnected.
// Nothing the peer sends can crash the server.
//
// Connection pressure: a connection that owes no response (TLS handshake,
// waiting for or receiving a request header, idle keep-alive, lingering
// close) is "waiting". When `max_connections` are open, a new connection
// closes the waiting connection that has waited longest instead of being
// refused; it is refused only when every open connection is busy with a
// request. While more than half of the slots are taken, a header wait that
// starts gets `pressure_header_timeout` instead of `header_timeout`. With
// `max_connections_per_peer`, a peer (IP address) at its cap displaces its own
// longest-waiting connection, or is refused when all of its connections are
// busy. So slow or silent clients cannot keep a fresh client (a kubelet
// probe on /healthz, the API server) out.
#ifndef VLLM_PROFILER_COMMON_HTTP_HTTP_SERVER_H_
#define VLLM_PROFILER_COMMON_HTTP_HTTP_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace vllm_profiler::http {

class TlsContext;

// One parsed request as the handler sees it.
struct Request {
  // "GET", "POST", ... A HEAD request reaches the handler as "GET" with
  // `head` set; the server then sends only the headers.
  std::string method;
  bool head = false;
  // The raw request-target, e.g. "/traces/x.json?gzip=1".
  std::string target;
  // `target` up to '?', percent-decoded. Never contains '\0'.
  std::string path;
  // `target` after '?', not decoded ("" when none).
  std::string query;
  // Header fields with lower-cased names; repeated fields are joined with
  // ", " as RFC 9110 allows.
  std::map<std::string, std::string> headers;
  std::string body;
  // "ip:port" of the peer.
  std::string remote;

  // The header's value, or nullptr. `name` must be lower-case.
  const std::string* Header(absl::string_view name) const;
  // The decoded value of query parameter `name` ("a=1&b=x%20y"), if present.
  std::optional<std::string> QueryParam(absl::string_view name) const;
  // True when Accept-Encoding lists gzip (with a non-zero q).
  bool AcceptsGzip() const;
};

// A pull-based response body. Called on one server thread at a time.
class BodySource {
 public:
  virtual ~BodySource() = default;
  // Total size in bytes when known (sent as Content-Length), else -1
  // (chunked transfer encoding).
  virtual int64_t size() const = 0;
  // Fills up to `capacity` bytes; returns the count, 0 at the end, or an
  // error (the connection is then closed: the status line is already out).
  virtual absl::StatusOr<size_t> Read(char* buffer, size_t capacity) = 0;
};

// Reads a file from disk. The file is opened by OpenFile() so a missing file
// can be turned into a 404 before any byte is sent.
class FileBodySource : public BodySource {
 public:
  // NOT_FOUND when the file does not exist, PERMISSION_DENIED /
  // FAILED_PRECONDITION (not a regular file) otherwise.
  static absl::StatusOr<std::unique_ptr<FileBodySource>> OpenFile(
      const std::string& path);
  ~FileBodySource() override;
  FileBodySource(const FileBodySource&) = delete;
  FileBodySource& operator=(const FileBodySource&) = delete;

  int64_t size() const override { return size_; }
  absl::StatusOr<size_t> Read(char* buffer, size_t capacity) override;

 private:
  FileBodySource(int fd, int64_t size) : fd_(fd), size_(size) {}
  int fd_;
  int64_t size_;
};

// What the handler returns.
struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  // Extra header fields (name, value); e.g. {"Content-Disposition", ...}.
  std::vector<std::pair<std::string, std::string>> headers;
  // The body, unless `stream` is set.
  std::string body;
  // A streamed body; takes precedence over `body`.
  std::shared_ptr<BodySource> stream;
  // Compress the body with gzip on the fly and send
  // "Content-Encoding: gzip" (chunked). Works for both body kinds.
  bool gzip = false;

  static Response Text(int status, std::string body);
  static Response Json(int status, std::string body);
  static Response Html(int status, std::string body);
  // 200 with the file's bytes, or 404/403/500 with a text message when the
  // file cannot be opened.
  static Response File(const std::string& path, std::string content_type);
};

using Handler = std::function<Response(const Request&)>;

class HttpServer {
 public:
  struct Options {
    // Address to bind; loopback by default (kubectl port-forward reaches it,
    // nothing else in the cluster does).
    std::string bind_address = "127.0.0.1";
    // 0 picks a free port; port() reports it.
    uint16_t port = 0;
    // Threads serving connections.
    int threads = 2;
    // Open connections at most (protects the file descriptor table). At the
    // limit a new connection displaces the longest-waiting one (counted in
    // evicted_connections()), or is closed right after accept when every
    // connection is busy (counted in rejected_connections()).
    int max_connections = 1024;
    // Open connections per peer IP address at most; 0 = no per-peer limit.
    // At the cap the peer's own longest-waiting connection is displaced, or
    // the new one refused when all of the peer's connections are busy.
    int max_connections_per_peer = 0;
    // Request bodies above this get 413.
    int64_t max_body_bytes = 1 << 20;
    // Request header block limit (Beast's header_limit); above it, 431.
    uint32_t max_header_bytes = 16 * 1024;
    // Time allowed from the first byte (or the TLS handshake) of a request to
    // the end of its header block.
    absl::Duration header_timeout = absl::Seconds(10);
    // Replaces header_timeout (and idle_timeout) for waits that start while
    // more than half of max_connections are open.
    absl::Duration pressure_header_timeout = absl::Seconds(2);
    // Time allowed to receive a request body.
    absl::Duration body_timeout = absl::Seconds(60);
    // A keep-alive connection idle this long between requests is closed.
    absl::Duration idle_timeout = absl::Seconds(60);
    // A response write that makes no progress for this long is abandoned.
    absl::Duration write_timeout = absl::Seconds(60);
    // After an answer sent before the request was fully read (400, 405, 413,
    // 431), read and discard up to this many bytes for up to this long, then
    // close.
    int64_t linger_bytes = 16 << 20;
    absl::Duration linger_timeout = absl::Seconds(5);
    // Size of the pieces a streamed body is read and written in.
    size_t stream_chunk_bytes = 256 * 1024;
    // zlib level for gzip responses (1 = fastest).
    int gzip_level = 1;
    // Serve TLS with this context (not owned; must outlive the server).
    // nullptr = plain HTTP.
    TlsContext* tls = nullptr;
    // Shutdown() waits this long for in-flight responses to finish.
    absl::Duration shutdown_grace = absl::Seconds(5);
    // Value of the Server header.
    std::string server_name = "vllm-profiler";
  };

  // Binds, listens and starts the threads. Fails (e.g. address in use,
  // invalid address) with a status naming the address.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(Options options,
                                                           Handler handler);

  // Shuts down (see Shutdown()).
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound port.
  uint16_t port() const;
  // "address:port" as bound.
  std::string address() const;

  // Open connections now; connections refused so far because of
  // Options::max_connections or max_connections_per_peer (every connection
  // busy); waiting connections closed so far to make room for new ones.
  int active_connections() const;
  int64_t rejected_connections() const;
  int64_t evicted_connections() const;

  // Stops accepting, lets responses in flight finish (up to
  // Options::shutdown_grace), closes idle keep-alive connections and joins
  // the threads. Idempotent.
  void Shutdown();

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Percent-decodes `in` ("%2F" -> "/", '+' kept). Fails on a truncated or
// non-hex escape and on an encoded NUL.
absl::StatusOr<std::string> PercentDecode(absl::string_view in);

}  // namespace vllm_profiler::http

#endif  // VLLM_PROFILER_COMMON_HTTP_HTTP_SERVER_H_
