// In-memory ProbeTransport for tests: records every message the probe
// writes, lets the test push CollectorCommands, and can refuse connections
// (collector absent) or break the current stream (collector gone).
//
// Thread-safe: the probe's sender/reader threads and the test thread use it.
#ifndef VLLM_PROFILER_PROBE_CORE_FAKE_TRANSPORT_H_
#define VLLM_PROFILER_PROBE_CORE_FAKE_TRANSPORT_H_

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "probe/core/transport.h"

namespace vllm_profiler::probe {

class FakeTransport final : public ProbeTransport {
 public:
  // Shared state outlives the transport (the probe owns the transport).
  struct State {
    Mutex mu;
    CondVar changed;  // Signalled on every change below.
    bool available ABSL_GUARDED_BY(mu) = true;
    int connects ABSL_GUARDED_BY(mu) = 0;
    int stream_id ABSL_GUARDED_BY(mu) = 0;  // Current stream (1-based).
    bool broken ABSL_GUARDED_BY(mu) = false;
    std::vector<v1::ProbeMessage> written ABSL_GUARDED_BY(mu);
    std::deque<v1::CollectorCommand> commands ABSL_GUARDED_BY(mu);

    void Push(v1::CollectorCommand c) {
      MutexLock l(&mu);
      commands.push_back(std::move(c));
      changed.SignalAll();
    }
    std::vector<v1::ProbeMessage> Written() {
      MutexLock l(&mu);
      return written;
    }
    void SetAvailable(bool a) {
      MutexLock l(&mu);
      available = a;
      changed.SignalAll();
    }
    void Break() {
      MutexLock l(&mu);
      broken = true;
      changed.SignalAll();
    }
    // Waits until `pred(written)` holds or `timeout` passes.
    template <typename Pred>
    bool WaitFor(Pred pred, absl::Duration timeout) {
      MutexLock l(&mu);
      // CondVar::WaitFor checks the predicate with mu held.
      return changed.WaitFor(
          &mu, timeout,
          [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return pred(written); });
    }
  };

  explicit FakeTransport(std::shared_ptr<State> state)
      : state_(std::move(state)) {}

  absl::StatusOr<std::unique_ptr<ProbeStream>> Connect(
      absl::Duration) override {
    MutexLock l(&state_->mu);
    state_->connects++;
    if (!state_->available) {
      return absl::UnavailableError("collector not reachable at fake");
    }
    state_->broken = false;
    const int id = ++state_->stream_id;
    state_->changed.SignalAll();  // The previous stream is dead now.
    return std::unique_ptr<ProbeStream>(new Stream(state_, id));
  }
  std::string target() const override { return "fake"; }

 private:
  class Stream final : public ProbeStream {
   public:
    Stream(std::shared_ptr<State> s, int id) : s_(std::move(s)), id_(id) {}
    bool Write(const v1::ProbeMessage& m) override {
      MutexLock l(&s_->mu);
      if (Dead()) return false;
      s_->written.push_back(m);
      s_->changed.SignalAll();
      return true;
    }
    bool Read(v1::CollectorCommand* c) override {
      MutexLock l(&s_->mu);
      while (!Dead() && s_->commands.empty()) {
        s_->changed.WaitWithTimeout(&s_->mu, absl::Seconds(1));
      }
      if (Dead()) return false;
      *c = std::move(s_->commands.front());
      s_->commands.pop_front();
      return true;
    }
    void WritesDone() override {}
    void Cancel() override {
      MutexLock l(&s_->mu);
      cancelled_ = true;
      s_->changed.SignalAll();
    }
    void Finish() override {}

   private:
    bool Dead() const ABSL_SHARED_LOCKS_REQUIRED(s_->mu) {
      return cancelled_ || s_->broken || s_->stream_id != id_;
    }
    std::shared_ptr<State> s_;
    const int id_;
    bool cancelled_ = false;  // Guarded by s_->mu.
  };

  std::shared_ptr<State> state_;
};

}  // namespace vllm_profiler::probe

#endif  // VLLM_PROFILER_PROBE_CORE_FAKE_TRANSPORT_H_
