// A stand-in ProbeService for the probe's end-to-end tests: accepts probe
// streams on a Unix socket and appends every received ProbeMessage as one
// JSON line (protobuf JSON mapping, plus "_stream") to --out. Optionally
// answers each Hello with a StartCaptureCommand, to test on-demand captures.
//
//   fake_collector --socket PATH --out FILE [--command_steps N]
//                  [--command_after_ms MS] [--ready_file FILE]
//                  [--discard 1]   (count messages only: benchmarks)
//                  [--signatures 0]  (a collector without input signatures)
//
// With signatures (the default, as the real collector) the Welcome offers
// them and each operator's input_signature_id is written back out as the
// inline input_shapes/input_dtype_ids it stands for, so the tests read
// shapes one way whichever the probe sent (input_signature_id stays).
//
// Runs until SIGTERM/SIGINT. Not a product: the real collector is
// //collector:collector; this keeps the probe tests independent of it.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "proto/profiler.grpc.pb.h"

namespace {

namespace v1 = vllm_profiler::v1;

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }

class Service final : public v1::ProbeService::Service {
 public:
  Service(std::string out, int command_steps, int command_after_ms,
          bool discard, bool signatures)
      : out_(out, std::ios::app),
        discard_(discard),
        signatures_(signatures),
        command_steps_(command_steps),
        command_after_ms_(command_after_ms) {}

  grpc::Status Connect(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::CollectorCommand, v1::ProbeMessage>* stream)
      override {
    const int id = ++streams_;
    v1::ProbeMessage m;
    std::map<uint32_t, v1::InputSignature> signatures;  // This stream's.
    bool first = true;
    std::thread commander;
    std::mutex write_mu;
    while (stream->Read(&m)) {
      if (first && m.has_hello()) {
        first = false;
        v1::CollectorCommand welcome;
        welcome.mutable_welcome()->set_collector_version("fake");
        welcome.mutable_welcome()->set_max_batch_bytes(16 << 20);
        welcome.mutable_welcome()->set_input_signatures(signatures_);
        {
          std::lock_guard<std::mutex> l(write_mu);
          stream->Write(welcome);
        }
        if (command_steps_ > 0) {
          commander = std::thread([&, id] {
            std::this_thread::sleep_for(
                std::chrono::milliseconds(command_after_ms_));
            v1::CollectorCommand cmd;
            cmd.mutable_start_capture()->set_capture_id("cmd-" +
                                                        std::to_string(id));
            cmd.mutable_start_capture()->mutable_config()->set_num_steps(
                command_steps_);
            cmd.mutable_start_capture()->mutable_config()->set_record_shapes(
                true);
            cmd.mutable_start_capture()->mutable_config()->set_cpu_ops(true);
            std::lock_guard<std::mutex> l(write_mu);
            stream->Write(cmd);
          });
        }
      }
      if (discard_) continue;
      if (m.has_batch()) Inline(m.mutable_batch(), &signatures);
      std::string json;
      google::protobuf::util::JsonPrintOptions opts;
      opts.preserve_proto_field_names = true;
      (void)google::protobuf::util::MessageToJsonString(m, &json, opts);
      std::lock_guard<std::mutex> l(mu_);
      out_ << "{\"_stream\":" << id << ",\"msg\":" << json << "}\n";
      out_.flush();
    }
    if (commander.joinable()) commander.join();
    return grpc::Status::OK;
  }

 private:
  // Replaces each event's input_signature_id by the inputs it stands for
  // (an unknown id stays: the tests see it).
  static void Inline(v1::EventBatch* batch,
                     std::map<uint32_t, v1::InputSignature>* signatures) {
    for (const v1::InputSignature& sig : batch->input_signatures()) {
      (*signatures)[sig.id()] = sig;
    }
    for (v1::Event& e : *batch->mutable_events()) {
      auto it = signatures->find(e.input_signature_id());
      if (e.input_signature_id() == 0 || it == signatures->end()) continue;
      *e.mutable_input_shapes() = it->second.shapes();
      *e.mutable_input_dtype_ids() = it->second.dtype_ids();
    }
  }

  std::mutex mu_;
  std::ofstream out_;
  const bool discard_;
  const bool signatures_;
  const int command_steps_;
  const int command_after_ms_;
  std::atomic<int> streams_{0};
};

}  // namespace

int main(int argc, char** argv) {
  std::string socket, out, ready;
  int command_steps = 0, command_after_ms = 0;
  bool discard = false;
  bool signatures = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--socket")
      socket = v;
    else if (k == "--out")
      out = v;
    else if (k == "--command_steps")
      command_steps = std::atoi(v.c_str());
    else if (k == "--command_after_ms")
      command_after_ms = std::atoi(v.c_str());
    else if (k == "--ready_file")
      ready = v;
    else if (k == "--discard")
      discard = v == "1";
    else if (k == "--signatures")
      signatures = v != "0";
  }
  if (socket.empty() || out.empty()) {
    std::fprintf(stderr, "usage: fake_collector --socket PATH --out FILE\n");
    return 2;
  }
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  Service service(out, command_steps, command_after_ms, discard, signatures);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    std::fprintf(stderr, "fake_collector: cannot listen on %s\n",
                 socket.c_str());
    return 1;
  }
  if (!ready.empty()) std::ofstream(ready) << "ready\n";
  while (!g_stop.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}
