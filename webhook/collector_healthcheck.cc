// vp-healthcheck: the collector sidecar's exec readiness probe.
//
// The collector listens on loopback only, which kubelet's httpGet and grpc
// probes (they connect to the pod IP) cannot reach, so the webhook injects
//   exec: ["/usr/local/bin/vp-healthcheck",
//   "--port_file=<dir>/collector-ports.json"]
// This program reads the collector's --port_file ({"grpc_port":N,
// "http_port":M}, written once all listeners are up), sends
// "GET /healthz" to 127.0.0.1:<http_port> and exits 0 on HTTP 200, 1
// otherwise, with one line on stderr saying why. No dependencies beyond
// libc, so it runs in a scratch image; 2 s timeout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

int Fail(const std::string& why) {
  std::fprintf(stderr, "vp-healthcheck: %s\n", why.c_str());
  return 1;
}

// The integer after "key": in a small JSON object, or -1.
long FindInt(const std::string& json, const char* key) {
  std::string k = std::string("\"") + key + "\"";
  size_t p = json.find(k);
  if (p == std::string::npos) return -1;
  p = json.find(':', p + k.size());
  if (p == std::string::npos) return -1;
  char* end = nullptr;
  long v = std::strtol(json.c_str() + p + 1, &end, 10);
  if (end == json.c_str() + p + 1) return -1;
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::string port_file = "/home/vllm/profiler/collector-ports.json";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--port_file=", 0) == 0) {
      port_file = a.substr(12);
    } else {
      return Fail("unknown argument " + a + " (usage: --port_file=PATH)");
    }
  }
  FILE* f = std::fopen(port_file.c_str(), "r");
  if (f == nullptr) {
    return Fail(port_file + ": " + std::strerror(errno) +
                " (collector not listening yet)");
  }
  char buf[512];
  size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  std::string json(buf, n);
  long port = FindInt(json, "http_port");
  if (port <= 0 || port > 65535) {
    return Fail(port_file + ": no http_port in \"" + json + "\"");
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail(std::string("socket: ") + std::strerror(errno));
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    return Fail("connect 127.0.0.1:" + std::to_string(port) + ": " +
                std::strerror(err));
  }
  const char kRequest[] =
      "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (send(fd, kRequest, sizeof(kRequest) - 1, MSG_NOSIGNAL) !=
      static_cast<ssize_t>(sizeof(kRequest) - 1)) {
    close(fd);
    return Fail("send failed");
  }
  ssize_t got = recv(fd, buf, sizeof(buf) - 1, 0);
  close(fd);
  if (got <= 0) return Fail("no answer from 127.0.0.1:" + std::to_string(port));
  std::string status(buf, static_cast<size_t>(got));
  status = status.substr(0, status.find("\r\n"));
  if (status.rfind("HTTP/1.1 200", 0) != 0 &&
      status.rfind("HTTP/1.0 200", 0) != 0) {
    return Fail("GET /healthz: " + status);
  }
  return 0;
}
