#include "common/http/http_server.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <set>
#include <thread>
#include <type_traits>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl.hpp"
#include "common/gzip.h"
#include "common/http/tls_context.h"
#include "common/logging.h"
#include "common/mutex.h"

namespace vllm_profiler::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

// ---------------------------------------------------------------------------
// Request helpers.

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

}  // namespace

absl::StatusOr<std::string> PercentDecode(absl::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) {
        return absl::InvalidArgumentError(
            "truncated percent-escape in request target");
      }
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) {
        return absl::InvalidArgumentError(
            "invalid percent-escape in request target");
      }
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') {
      return absl::InvalidArgumentError("NUL byte in request target");
    }
    out.push_back(c);
  }
  return out;
}

const std::string* Request::Header(absl::string_view name) const {
  auto it = headers.find(std::string(name));
  return it == headers.end() ? nullptr : &it->second;
}

std::optional<std::string> Request::QueryParam(absl::string_view name) const {
  for (absl::string_view part : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    if (kv.first != name) continue;
    std::string value(kv.second);
    for (char& c : value) {
      if (c == '+') c = ' ';
    }
    absl::StatusOr<std::string> decoded = PercentDecode(value);
    if (!decoded.ok()) return std::nullopt;
    return *decoded;
  }
  return std::nullopt;
}

bool Request::AcceptsGzip() const {
  const std::string* accept = Header("accept-encoding");
  if (accept == nullptr) return false;
  for (absl::string_view item : absl::StrSplit(*accept, ',')) {
    std::vector<absl::string_view> parts = absl::StrSplit(item, ';');
    if (absl::AsciiStrToLower(absl::StripAsciiWhitespace(parts[0])) != "gzip") {
      continue;
    }
    for (size_t i = 1; i < parts.size(); ++i) {
      absl::string_view p = absl::StripAsciiWhitespace(parts[i]);
      if (absl::ConsumePrefix(&p, "q=")) {
        double q = 1;
        if (absl::SimpleAtod(p, &q) && q <= 0) return false;
      }
    }
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Bodies.

absl::StatusOr<std::unique_ptr<FileBodySource>> FileBodySource::OpenFile(
    const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string msg = absl::StrCat(path, ": ", std::strerror(err));
    if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(msg);
    if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
    return absl::UnavailableError(msg);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": not a regular file"));
  }
  // Sequential reads: let the kernel read ahead aggressively.
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return std::unique_ptr<FileBodySource>(new FileBodySource(fd, st.st_size));
}

FileBodySource::~FileBodySource() { ::close(fd_); }

absl::StatusOr<size_t> FileBodySource::Read(char* buffer, size_t capacity) {
  while (true) {
    ssize_t n = ::read(fd_, buffer, capacity);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    return absl::DataLossError(
        absl::StrCat("reading response body: ", std::strerror(errno)));
  }
}

namespace {

// A string body exposed as a BodySource (for gzip of small bodies).
class StringBodySource : public BodySource {
 public:
  explicit StringBodySource(std::string body) : body_(std::move(body)) {}
  int64_t size() const override { return static_cast<int64_t>(body_.size()); }
  absl::StatusOr<size_t> Read(char* buffer, size_t capacity) override {
    size_t n = std::min(capacity, body_.size() - pos_);
    std::memcpy(buffer, body_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  std::string body_;
  size_t pos_ = 0;
};

// Compresses another source into the gzip format on the fly.
class GzipBodySource : public BodySource {
 public:
  GzipBodySource(std::shared_ptr<BodySource> inner, int level, size_t chunk)
      : inner_(std::move(inner)), compressor_(level), in_(chunk) {}
  int64_t size() const override { return -1; }

  absl::StatusOr<size_t> Read(char* buffer, size_t capacity) override {
    while (pos_ == out_.size() && !finished_) {
      out_.clear();
      pos_ = 0;
      absl::StatusOr<size_t> n = inner_->Read(in_.data(), in_.size());
      if (!n.ok()) return n.status();
      finished_ = *n == 0;  // The inner source is done: write the trailer.
      absl::Status s = compressor_.Compress(absl::string_view(in_.data(), *n),
                                            finished_, &out_);
      if (!s.ok()) return s;
    }
    const size_t n = std::min(capacity, out_.size() - pos_);
    std::memcpy(buffer, out_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  std::shared_ptr<BodySource> inner_;
  GzipCompressor compressor_;
  std::vector<char> in_;
  std::string out_;  // Compressed bytes not yet handed out, from pos_.
  size_t pos_ = 0;
  bool finished_ = false;
};

}  // namespace

Response Response::Text(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response Response::Json(int status, std::string body) {
  Response r = Text(status, std::move(body));
  r.content_type = "application/json";
  return r;
}

Response Response::Html(int status, std::string body) {
  Response r = Text(status, std::move(body));
  r.content_type = "text/html; charset=utf-8";
  return r;
}

Response Response::File(const std::string& path, std::string content_type) {
  absl::StatusOr<std::unique_ptr<FileBodySource>> file =
      FileBodySource::OpenFile(path);
  if (!file.ok()) {
    if (absl::IsNotFound(file.status())) return Text(404, "not found\n");
    if (absl::IsPermissionDenied(file.status())) {
      return Text(403, "forbidden\n");
    }
    VP_LOG(WARNING) << "cannot serve " << file.status().message();
    return Text(500, "cannot read file\n");
  }
  Response r;
  r.content_type = std::move(content_type);
  r.stream = *std::move(file);
  return r;
}

// ---------------------------------------------------------------------------
// The server.

namespace {

// What the server needs from a session, whatever its stream type.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Closes the connection if it owes no response (TLS handshake, waiting for
  // or receiving a request header, lingering close); otherwise the response
  // in progress becomes the last one. Called on any thread.
  virtual void CloseIfIdle() = 0;
  // Chosen to make room: closes the connection if it is still silent (no
  // bytes arrived since its wait began), else tells the server it stays
  // (HttpServer::Impl::Spare). Called on any thread.
  virtual void Evict() = 0;
};

bool IsRoutedMethod(bhttp::verb v) {
  switch (v) {
    case bhttp::verb::get:
    case bhttp::verb::head:
    case bhttp::verb::post:
    case bhttp::verb::put:
    case bhttp::verb::delete_:
    case bhttp::verb::patch:
    case bhttp::verb::options:
      return true;
    default:
      return false;
  }
}

constexpr char kAllow[] = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS";

}  // namespace

class HttpServer::Impl {
 public:
  Impl(Options options, Handler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        acceptor_(net::make_strand(ioc_)) {}

  ~Impl() { Shutdown(); }

  absl::Status Listen();
  void StartThreads();
  void Shutdown();

  // Registers a new connection from `peer` (an IP address) if there is room,
  // making room by choosing a waiting connection to close (returned in
  // `victim`; the caller closes it outside mu_). False: refuse it.
  bool Admit(const std::shared_ptr<SessionBase>& s, const std::string& peer,
             std::shared_ptr<SessionBase>* victim);
  void Unregister(SessionBase* s);
  // A session starts (true) or stops (false) waiting: see the header.
  void SetWaiting(SessionBase* s, bool waiting);
  // A waiting session has received bytes (it is no longer silent).
  void SetProgressed(SessionBase* s);
  // An evicted session turned out not to be silent (its bytes arrived but
  // were not yet noticed): it counts again, and the count may exceed the
  // limit until the next connection displaces another.
  void Spare(SessionBase* s);
  // The deadline for a wait starting now whose normal limit is `normal`.
  absl::Duration WaitTimeout(absl::Duration normal) const {
    // Relaxed: a heuristic; a stale count only shifts one deadline.
    const int live = live_.load(std::memory_order_relaxed);
    if (live * 2 > options_.max_connections) {
      return std::min(normal, options_.pressure_header_timeout);
    }
    return normal;
  }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  int active() {
    MutexLock lock(&mu_);
    return static_cast<int>(sessions_.size());
  }
  // Relaxed: statistics.
  std::atomic<int64_t> rejected_{0};
  std::atomic<int64_t> evicted_{0};

  const Options& options() const { return options_; }
  Response Handle(const Request& request);

  uint16_t port_ = 0;
  std::string address_;

 private:
  void DoAccept();

  struct Entry {
    std::weak_ptr<SessionBase> session;
    std::string peer;
    // Owes no response; since when (an order, not a time: wait_clock_).
    bool waiting = true;
    uint64_t waiting_since = 0;
    // Has received bytes during this wait.
    bool progressed = false;
    // Chosen to make room; no longer counted against the limits.
    bool evicting = false;
  };
  // The waiting, not yet evicting entry to close first, among all
  // (peer == nullptr) or one peer's: the silent one that has waited longest,
  // else the one that has waited longest; nullptr when none.
  Entry* LongestWaiting(const std::string* peer)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkEvicting(Entry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  const Handler handler_;
  Mutex mu_;
  std::map<SessionBase*, Entry> sessions_ ABSL_GUARDED_BY(mu_);
  // Connections per peer, not counting evicting ones.
  std::map<std::string, int> per_peer_ ABSL_GUARDED_BY(mu_);
  uint64_t wait_clock_ ABSL_GUARDED_BY(mu_) = 0;
  // sessions_ less the evicting ones; written under mu_.
  std::atomic<int> live_{0};
  CondVar drained_;  // Signalled when sessions_ becomes empty.
  std::atomic<bool> stopping_{false};
  std::atomic<bool> shut_down_{false};
  // Declared after the session registry: destroying the io_context destroys
  // pending handlers and with them sessions, which unregister themselves.
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
};

namespace {

// One connection. Stream is beast::tcp_stream or
// beast::ssl_stream<beast::tcp_stream>. All members are touched only on the
// session's strand (every async operation is started on it).
template <bool kTls>
class Session : public SessionBase,
                public std::enable_shared_from_this<Session<kTls>> {
 public:
  using Stream = std::conditional_t<kTls, beast::ssl_stream<beast::tcp_stream>,
                                    beast::tcp_stream>;

  // Plain HTTP.
  Session(HttpServer::Impl* server, tcp::socket socket)
      : server_(server),
        stream_(std::move(socket)),
        idle_timer_(stream_.get_executor()) {}
  // TLS: keeps the context of its handshake alive for the connection's life.
  Session(HttpServer::Impl* server, tcp::socket socket,
          std::shared_ptr<ssl::context> ctx)
      : server_(server),
        tls_ctx_(std::move(ctx)),
        stream_(std::move(socket), *tls_ctx_),
        idle_timer_(stream_.get_executor()) {}

  ~Session() override { server_->Unregister(this); }

  void Run() {
    net::dispatch(
        stream_.get_executor(),
        beast::bind_front_handler(&Session::OnRun, this->shared_from_this()));
  }

  void CloseIfIdle() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      if (self->waiting_) {
        beast::error_code ec;
        self->Lowest().socket().close(ec);
        self->idle_timer_.cancel();
      }
    });
  }

 private:
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }
  const HttpServer::Options& opts() const { return server_->options(); }

  void Evict() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      beast::error_code ec;
      const bool silent = self->waiting_ && !self->progressed_ &&
                          self->Lowest().socket().available(ec) == 0;
      if (!silent && !ec) return self->server_->Spare(self.get());
      self->Lowest().socket().close(ec);
      self->idle_timer_.cancel();
    });
  }

  // Owes no response (true) or has a request in hand (false); mirrored in
  // the server's registry, which picks connections to close under pressure.
  void SetWaiting(bool waiting) {
    if (waiting_ == waiting) return;
    waiting_ = waiting;
    progressed_ = false;
    server_->SetWaiting(this, waiting);
  }

  // A connection first waits, silently, for its first bytes; that wait and
  // the keep-alive wait between requests end when the socket is readable.
  void OnRun() { WaitReadable(opts().header_timeout); }

  void WaitReadable(absl::Duration limit) {
    idle_timer_.expires_after(ToChrono(server_->WaitTimeout(limit)));
    idle_timer_.async_wait(
        [self = this->shared_from_this()](beast::error_code ec) {
          if (ec) return;  // Cancelled: data arrived or the session ended.
          beast::error_code ignored;
          self->Lowest().socket().close(ignored);
        });
    Lowest().socket().async_wait(
        tcp::socket::wait_read,
        beast::bind_front_handler(&Session::OnReadable,
                                  this->shared_from_this()));
  }

  void OnReadable(beast::error_code ec) {
    idle_timer_.cancel();
    if (ec || !Lowest().socket().is_open()) return CloseNow();
    // The peer has sent something: it is closed to make room only after
    // every silent connection.
    progressed_ = true;
    server_->SetProgressed(this);
    if constexpr (kTls) {
      if (!handshake_done_) {
        Lowest().expires_after(
            ToChrono(server_->WaitTimeout(opts().header_timeout)));
        stream_.async_handshake(
            ssl::stream_base::server,
            beast::bind_front_handler(&Session::OnHandshake,
                                      this->shared_from_this()));
        return;
      }
    }
    ReadHeader();
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) {
      // Typically a plain-HTTP client or a scanner: nothing to answer.
      VP_LOG(DEBUG) << "TLS handshake failed: " << ec.message();
      return CloseNow();
    }
    handshake_done_ = true;
    ReadRequest();
  }

  // Waits for the next request; between keep-alive requests, up to the idle
  // timeout.
  void ReadRequest() {
    if (server_->stopping() && !first_) return CloseNow();
    SetWaiting(true);
    bool pending = buffer_.size() > 0;
    if constexpr (kTls) {
      pending = pending || SSL_pending(stream_.native_handle()) > 0;
    }
    if (first_ || pending) return ReadHeader();
    WaitReadable(opts().idle_timeout);
  }

  void ReadHeader() {
    first_ = false;
    parser_.emplace();
    parser_->header_limit(opts().max_header_bytes);
    parser_->body_limit(static_cast<uint64_t>(opts().max_body_bytes));
    Lowest().expires_after(
        ToChrono(server_->WaitTimeout(opts().header_timeout)));
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(
                                 &Session::OnHeader, this->shared_from_this()));
  }

  void OnHeader(beast::error_code ec, size_t) {
    if (ec) return OnReadError(ec);
    SetWaiting(false);
    const auto& req = parser_->get();
    if (!IsRoutedMethod(req.method())) {
      Response r = Response::Text(
          405, absl::StrCat("method ", std::string(req.method_string()),
                            " not allowed\n"));
      r.headers.emplace_back("Allow", kAllow);
      unread_request_ = true;
      return Send(std::move(r), /*head=*/false, /*keep_alive=*/false);
    }
    if (parser_->content_length() &&
        *parser_->content_length() >
            static_cast<uint64_t>(opts().max_body_bytes)) {
      unread_request_ = true;
      return Send(TooLarge(), false, false);
    }
    // A client that asked "Expect: 100-continue" (curl does for larger
    // bodies) waits for the interim response before sending the body.
    const auto expect = req.find(bhttp::field::expect);
    if (expect != req.end() &&
        absl::EqualsIgnoreCase(std::string(expect->value()), "100-continue")) {
      auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(
          bhttp::status::continue_, 11);
      Lowest().expires_after(ToChrono(opts().write_timeout));
      bhttp::async_write(stream_, *cont,
                         [self = this->shared_from_this(), cont](
                             beast::error_code ec, size_t) {
                           if (ec) return self->CloseNow();
                           self->ReadBody();
                         });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    Lowest().expires_after(ToChrono(opts().body_timeout));
    bhttp::async_read(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&Session::OnBody, this->shared_from_this()));
  }

  Response TooLarge() const {
    return Response::Text(413,
                          absl::StrCat("request body too large: the limit is ",
                                       opts().max_body_bytes, " bytes\n"));
  }

  void OnReadError(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::operation_aborted || ec == beast::error::timeout ||
        ec == net::error::connection_reset ||
        ec == ssl::error::stream_truncated) {
      return CloseNow();
    }
    // Whatever is answered now, the rest of the request is still coming.
    SetWaiting(false);
    unread_request_ = true;
    if (ec == bhttp::error::body_limit) return Send(TooLarge(), false, false);
    if (ec == bhttp::error::header_limit) {
      return Send(Response::Text(431, "request header fields too large\n"),
                  false, false);
    }
    if (ec.category() ==
        bhttp::make_error_code(bhttp::error::bad_method).category()) {
      return Send(Response::Text(400, absl::StrCat("malformed HTTP request: ",
                                                   ec.message(), "\n")),
                  false, false);
    }
    VP_LOG(DEBUG) << "read failed: " << ec.message();
    CloseNow();
  }

  void OnBody(beast::error_code ec, size_t) {
    if (ec) return OnReadError(ec);
    bhttp::request<bhttp::string_body> req = parser_->release();
    parser_.reset();

    Request request;
    request.head = req.method() == bhttp::verb::head;
    request.method = request.head ? "GET" : std::string(req.method_string());
    request.target = std::string(req.target());
    absl::string_view target = request.target;
    size_t q = target.find('?');
    absl::string_view raw_path = target.substr(0, q);
    if (q != absl::string_view::npos) {
      request.query = std::string(target.substr(q + 1));
    }
    const bool wants_keep_alive = req.keep_alive();
    if (raw_path.empty() || raw_path[0] != '/') {
      return Send(Response::Text(400,
                                 "malformed HTTP request: the target "
                                 "must be an absolute path\n"),
                  request.head, false);
    }
    absl::StatusOr<std::string> path = PercentDecode(raw_path);
    if (!path.ok()) {
      return Send(
          Response::Text(400, absl::StrCat("malformed HTTP request: ",
                                           path.status().message(), "\n")),
          request.head, false);
    }
    request.path = *std::move(path);
    for (const auto& field : req) {
      std::string name =
          absl::AsciiStrToLower(std::string(field.name_string()));
      auto [it, inserted] =
          request.headers.emplace(name, std::string(field.value()));
      if (!inserted)
        absl::StrAppend(&it->second, ", ", std::string(field.value()));
    }
    request.body = std::move(req.body());
    beast::error_code ignored;
    tcp::endpoint peer = Lowest().socket().remote_endpoint(ignored);
    request.remote = absl::StrCat(peer.address().to_string(), ":", peer.port());

    Response response = server_->Handle(request);
    VP_LOG(DEBUG) << "HTTP " << request.remote << " "
                  << (request.head ? "HEAD" : request.method) << " "
                  << request.target << " -> " << response.status;
    // Checked after the handler: a Shutdown() meanwhile makes this the last
    // response on the connection.
    Send(std::move(response), request.head,
         wants_keep_alive && !server_->stopping());
  }

  template <class Message>
  void SetCommonFields(Message& m, const Response& r, bool keep_alive) {
    m.result(static_cast<unsigned>(r.status));
    m.set(bhttp::field::server, opts().server_name);
    m.set(bhttp::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) m.set(name, value);
    if (r.gzip) m.set(bhttp::field::content_encoding, "gzip");
    m.keep_alive(keep_alive);
  }

  void Send(Response r, bool head, bool keep_alive) {
    Lowest().expires_after(ToChrono(opts().write_timeout));
    if (!r.stream && !r.gzip) {
      if (head) {
        auto res = std::make_shared<bhttp::response<bhttp::empty_body>>();
        SetCommonFields(*res, r, keep_alive);
        res->content_length(r.body.size());
        return WriteWhole(std::move(res), keep_alive);
      }
      auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
      SetCommonFields(*res, r, keep_alive);
      res->body() = std::move(r.body);
      res->prepare_payload();
      return WriteWhole(std::move(res), keep_alive);
    }
    std::shared_ptr<BodySource> source =
        r.stream ? r.stream : std::make_shared<StringBodySource>(r.body);
    if (r.gzip) {
      source = std::make_shared<GzipBodySource>(
          std::move(source), opts().gzip_level, opts().stream_chunk_bytes);
    }
    const int64_t size = source->size();
    if (head) {
      auto res = std::make_shared<bhttp::response<bhttp::empty_body>>();
      SetCommonFields(*res, r, keep_alive);
      if (size >= 0) res->content_length(size);
      return WriteWhole(std::move(res), keep_alive);
    }
    source_ = std::move(source);
    remaining_ = size;
    keep_alive_ = keep_alive;
    stream_res_.emplace();
    SetCommonFields(*stream_res_, r, keep_alive);
    if (size >= 0) {
      stream_res_->content_length(size);
    } else {
      stream_res_->chunked(true);
    }
    stream_res_->body().data = nullptr;
    stream_res_->body().more = true;
    serializer_.emplace(*stream_res_);
    bhttp::async_write_header(
        stream_, *serializer_,
        beast::bind_front_handler(&Session::OnStreamWrite,
                                  this->shared_from_this()));
  }

  template <class Message>
  void WriteWhole(std::shared_ptr<Message> res, bool keep_alive) {
    bhttp::async_write(stream_, *res,
                       [self = this->shared_from_this(), res, keep_alive](
                           beast::error_code ec, size_t) {
                         self->AfterResponse(ec, keep_alive);
                       });
  }

  // Sends the next chunk of a streamed body.
  void OnStreamWrite(beast::error_code ec, size_t) {
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) return AfterResponse(ec, false);
    if (serializer_->is_done()) {
      FinishStream();
      return AfterResponse({}, keep_alive_);
    }
    if (chunk_.size() != opts().stream_chunk_bytes) {
      chunk_.resize(opts().stream_chunk_bytes);
    }
    absl::StatusOr<size_t> n = source_->Read(chunk_.data(), chunk_.size());
    if (!n.ok()) {
      VP_LOG(WARNING) << "response body aborted: " << n.status().message();
      FinishStream();
      return CloseNow();
    }
    if (remaining_ >= 0) {
      if (*n > static_cast<uint64_t>(remaining_)) *n = remaining_;
      if (*n == 0 && remaining_ > 0) {
        // The file shrank under us: the promised length cannot be met.
        VP_LOG(WARNING) << "response body ended " << remaining_
                        << " bytes short; closing the connection";
        FinishStream();
        return CloseNow();
      }
      remaining_ -= static_cast<int64_t>(*n);
    }
    auto& body = stream_res_->body();
    if (*n > 0) {
      body.data = chunk_.data();
      body.size = *n;
      body.more = true;
    } else {
      body.data = nullptr;
      body.size = 0;
      body.more = false;
    }
    Lowest().expires_after(ToChrono(opts().write_timeout));
    bhttp::async_write(stream_, *serializer_,
                       beast::bind_front_handler(&Session::OnStreamWrite,
                                                 this->shared_from_this()));
  }

  void FinishStream() {
    serializer_.reset();
    stream_res_.reset();
    source_.reset();
    std::vector<char>().swap(chunk_);
  }

  void AfterResponse(beast::error_code ec, bool keep_alive) {
    if (ec) {
      VP_LOG(DEBUG) << "write failed: " << ec.message();
      return CloseNow();
    }
    if (!keep_alive) return CloseGracefully();
    ReadRequest();
  }

  // Lingering close: read and discard what the peer still sends (the rest
  // of a rejected body) up to Options::linger_bytes / linger_timeout, so
  // that closing with unread data does not reset the connection before the
  // peer has read our response. Over TLS the bytes must pass through the
  // TLS layer; a request that was read whole gets a plain TLS shutdown.
  void CloseGracefully() {
    SetWaiting(true);
    // A peer that was answered after its whole request only has to see our
    // FIN; one cut off mid-request may still be writing its body.
    Lowest().expires_after(unread_request_ ? ToChrono(opts().linger_timeout)
                                           : std::chrono::seconds(1));
    lingered_ = static_cast<int64_t>(buffer_.size());
    buffer_.consume(buffer_.size());
    if constexpr (kTls) {
      if (!unread_request_) {
        Lowest().expires_after(std::chrono::seconds(1));
        stream_.async_shutdown([self = this->shared_from_this()](
                                   beast::error_code) { self->CloseNow(); });
        return;
      }
    } else {
      beast::error_code ec;
      Lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
      if (ec) return CloseNow();
    }
    Drain();
  }

  void Drain() {
    if (lingered_ >= opts().linger_bytes) return CloseNow();
    if (chunk_.size() < 16384) chunk_.resize(16384);
    auto on_read = [self = this->shared_from_this()](beast::error_code ec,
                                                     size_t n) {
      if (ec) return self->CloseNow();
      self->lingered_ += static_cast<int64_t>(n);
      self->Drain();
    };
    if constexpr (kTls) {
      stream_.async_read_some(net::buffer(chunk_.data(), chunk_.size()),
                              std::move(on_read));
    } else {
      Lowest().async_read_some(net::buffer(chunk_.data(), chunk_.size()),
                               std::move(on_read));
    }
  }

  void CloseNow() {
    beast::error_code ec;
    idle_timer_.cancel();
    Lowest().socket().close(ec);
  }

  HttpServer::Impl* const server_;
  std::shared_ptr<ssl::context> tls_ctx_;  // TLS only; before stream_.
  Stream stream_;
  net::steady_timer idle_timer_;
  beast::flat_buffer buffer_;
  bool first_ = true;
  bool handshake_done_ = false;  // TLS only.
  // Bytes arrived during the current wait.
  bool progressed_ = false;
  // See SetWaiting(); a new connection waits for its first header.
  bool waiting_ = true;
  // An answer went out before the request was read whole: linger on close.
  bool unread_request_ = false;
  int64_t lingered_ = 0;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  // Streamed response state.
  std::shared_ptr<BodySource> source_;
  int64_t remaining_ = -1;
  bool keep_alive_ = false;
  std::optional<bhttp::response<bhttp::buffer_body>> stream_res_;
  std::optional<bhttp::response_serializer<bhttp::buffer_body>> serializer_;
  std::vector<char> chunk_;
};

}  // namespace

Response HttpServer::Impl::Handle(const Request& request) {
  // The handler is project code, but the libraries under it (JSON, STL) may
  // throw; nothing may take the server down.
  try {
    return handler_(request);
  } catch (const std::exception& e) {
    VP_LOG(ERROR) << "handler for " << request.method << " " << request.path
                  << " threw: " << e.what();
  } catch (...) {
    VP_LOG(ERROR) << "handler for " << request.method << " " << request.path
                  << " threw a non-standard exception";
  }
  return Response::Text(500, "internal server error\n");
}

absl::Status HttpServer::Impl::Listen() {
  beast::error_code ec;
  net::ip::address address = net::ip::make_address(options_.bind_address, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid HTTP bind address '", options_.bind_address,
                     "': ", ec.message()));
  }
  tcp::endpoint endpoint(address, options_.port);
  const std::string where =
      absl::StrCat(options_.bind_address, ":", options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for HTTP on ", where, ": ", ec.message()));
  }
  tcp::endpoint bound = acceptor_.local_endpoint(ec);
  port_ = bound.port();
  address_ = absl::StrCat(
      address.is_v6() ? "[" + address.to_string() + "]" : address.to_string(),
      ":", port_);
  return absl::OkStatus();
}

void HttpServer::Impl::StartThreads() {
  DoAccept();
  const int n = std::max(1, options_.threads);
  for (int i = 0; i < n; ++i) {
    threads_.emplace_back([this] { ioc_.run(); });
  }
}

void HttpServer::Impl::DoAccept() {
  acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec,
                                                        tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || stopping()) return;
      // EMFILE and friends: keep accepting, the condition may clear.
      VP_LOG_EVERY_N(WARNING, 100) << "HTTP accept failed: " << ec.message();
      return DoAccept();
    }
    if (stopping()) return;
    beast::error_code peer_ec;
    const std::string peer =
        socket.remote_endpoint(peer_ec).address().to_string();
    std::shared_ptr<SessionBase> s;
    std::function<void()> run;
    if (options_.tls != nullptr) {
      auto t = std::make_shared<Session<true>>(this, std::move(socket),
                                               options_.tls->Current());
      run = [t] { t->Run(); };
      s = std::move(t);
    } else {
      auto t = std::make_shared<Session<false>>(this, std::move(socket));
      run = [t] { t->Run(); };
      s = std::move(t);
    }
    std::shared_ptr<SessionBase> victim;
    if (Admit(s, peer, &victim)) {
      // Outside mu_ (CloseIfIdle only posts, but dropping `victim` may run
      // ~Session, which takes mu_).
      if (victim != nullptr) victim->Evict();
      run();
    }
    DoAccept();
  });
}

HttpServer::Impl::Entry* HttpServer::Impl::LongestWaiting(
    const std::string* peer) {
  Entry* best = nullptr;
  for (auto& [raw, e] : sessions_) {
    if (!e.waiting || e.evicting) continue;
    if (peer != nullptr && e.peer != *peer) continue;
    if (best == nullptr ||
        std::make_pair(e.progressed, e.waiting_since) <
            std::make_pair(best->progressed, best->waiting_since)) {
      best = &e;
    }
  }
  return best;
}

void HttpServer::Impl::MarkEvicting(Entry* e) {
  e->evicting = true;
  if (--per_peer_[e->peer] == 0) per_peer_.erase(e->peer);
  live_.store(live_.load(std::memory_order_relaxed) - 1,
              std::memory_order_relaxed);
  evicted_.fetch_add(1, std::memory_order_relaxed);
}

bool HttpServer::Impl::Admit(const std::shared_ptr<SessionBase>& s,
                             const std::string& peer,
                             std::shared_ptr<SessionBase>* victim) {
  MutexLock lock(&mu_);
  Entry* evict = nullptr;
  const char* full = nullptr;
  auto peer_it = per_peer_.find(peer);
  if (options_.max_connections_per_peer > 0 && peer_it != per_peer_.end() &&
      peer_it->second >= options_.max_connections_per_peer) {
    evict = LongestWaiting(&peer);
    full = "connections from this peer";
  } else if (live_.load(std::memory_order_relaxed) >=
             options_.max_connections) {
    evict = LongestWaiting(nullptr);
    full = "connections";
  }
  if (full != nullptr && evict == nullptr) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    VP_LOG_EVERY_N(WARNING, 100)
        << "HTTP: all " << full << " busy with requests, refusing " << peer;
    return false;
  }
  if (evict != nullptr) {
    *victim = evict->session.lock();
    MarkEvicting(evict);
    VP_LOG_EVERY_N(WARNING, 100)
        << "HTTP: " << full << " at the limit, closing the longest-waiting"
        << " one (from " << evict->peer << ") for " << peer;
  }
  Entry& e = sessions_[s.get()];
  e.session = s;
  e.peer = peer;
  e.waiting_since = ++wait_clock_;
  ++per_peer_[peer];
  live_.store(live_.load(std::memory_order_relaxed) + 1,
              std::memory_order_relaxed);
  return true;
}

void HttpServer::Impl::Unregister(SessionBase* s) {
  MutexLock lock(&mu_);
  auto it = sessions_.find(s);
  if (it == sessions_.end()) return;  // Refused at accept.
  if (!it->second.evicting) {
    if (--per_peer_[it->second.peer] == 0) per_peer_.erase(it->second.peer);
    live_.store(live_.load(std::memory_order_relaxed) - 1,
                std::memory_order_relaxed);
  }
  sessions_.erase(it);
  if (sessions_.empty()) drained_.SignalAll();
}

void HttpServer::Impl::SetWaiting(SessionBase* s, bool waiting) {
  MutexLock lock(&mu_);
  auto it = sessions_.find(s);
  if (it == sessions_.end()) return;
  it->second.waiting = waiting;
  it->second.progressed = false;
  if (waiting) it->second.waiting_since = ++wait_clock_;
}

void HttpServer::Impl::Spare(SessionBase* s) {
  MutexLock lock(&mu_);
  auto it = sessions_.find(s);
  if (it == sessions_.end() || !it->second.evicting) return;
  Entry& e = it->second;
  e.evicting = false;
  e.progressed = true;
  ++per_peer_[e.peer];
  live_.store(live_.load(std::memory_order_relaxed) + 1,
              std::memory_order_relaxed);
  evicted_.fetch_sub(1, std::memory_order_relaxed);
}

void HttpServer::Impl::SetProgressed(SessionBase* s) {
  MutexLock lock(&mu_);
  auto it = sessions_.find(s);
  if (it != sessions_.end()) it->second.progressed = true;
}

void HttpServer::Impl::Shutdown() {
  if (shut_down_.exchange(true)) return;
  stopping_.store(true, std::memory_order_release);
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
  std::vector<std::shared_ptr<SessionBase>> live;
  {
    MutexLock lock(&mu_);
    for (auto& [raw, e] : sessions_) {
      if (std::shared_ptr<SessionBase> s = e.session.lock()) {
        live.push_back(s);
      }
    }
  }
  // Outside mu_: dropping the last reference runs ~Session, which takes mu_.
  for (auto& s : live) s->CloseIfIdle();
  live.clear();
  // Sessions finishing a response close afterwards (stopping() disables
  // keep-alive); wait for them, within the grace period.
  {
    MutexLock lock(&mu_);
    drained_.WaitFor(&mu_, options_.shutdown_grace,
                     [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
                       return sessions_.empty();  // mu_ held by WaitFor.
                     });
  }
  ioc_.stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(Options options,
                                                              Handler handler) {
  if (!handler) return absl::InvalidArgumentError("HTTP handler is empty");
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handler));
  if (absl::Status s = impl->Listen(); !s.ok()) return s;
  impl->StartThreads();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

uint16_t HttpServer::port() const { return impl_->port_; }

std::string HttpServer::address() const { return impl_->address_; }

int HttpServer::active_connections() const { return impl_->active(); }

int64_t HttpServer::rejected_connections() const {
  return impl_->rejected_.load(std::memory_order_relaxed);
}

int64_t HttpServer::evicted_connections() const {
  return impl_->evicted_.load(std::memory_order_relaxed);
}

void HttpServer::Shutdown() { impl_->Shutdown(); }

}  // namespace vllm_profiler::http
