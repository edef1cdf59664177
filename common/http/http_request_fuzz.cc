// Fuzzes what the HTTP server does with peer bytes beyond Beast's own
// parser: the percent-decoding of the path, query parameter lookup and
// Accept-Encoding parsing, plus Beast's request parser under the server's
// limits. Nothing may crash or hang.
#include <cstddef>
#include <cstdint>
#include <string>

#include "boost/asio/buffer.hpp"
#include "boost/beast/http.hpp"
#include "common/http/http_server.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace bhttp = boost::beast::http;
  const std::string in(reinterpret_cast<const char*>(data), size);
  using vllm_profiler::http::PercentDecode;
  using vllm_profiler::http::Request;

  absl::StatusOr<std::string> decoded = PercentDecode(in);
  if (decoded.ok() && decoded->find('\0') != std::string::npos)
    __builtin_trap();

  Request r;
  r.query = in;
  r.QueryParam("id").has_value();
  r.QueryParam("").has_value();
  r.headers["accept-encoding"] = in;
  r.AcceptsGzip();

  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(1 << 20);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t offset = 0;
  while (offset < in.size() && !ec && !parser.is_done()) {
    size_t n = parser.put(
        boost::asio::buffer(in.data() + offset, in.size() - offset), ec);
    if (ec == bhttp::error::need_more) break;
    if (n == 0) break;
    offset += n;
  }
  if (parser.is_header_done()) {
    const auto& req = parser.get();
    std::string target(req.target());
    static_cast<void>(PercentDecode(target.substr(0, target.find('?'))));
  }
  return 0;
}
