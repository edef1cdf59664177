// Mutex, MutexLock and CondVar for the collector: thin wrappers over
// std::mutex / std::condition_variable with abseil's thread-safety
// annotations (so clang's -Wthread-safety checks ABSL_GUARDED_BY).
//
// Why not absl::Mutex: Debian's abseil is not built with ThreadSanitizer,
// so under --config=tsan its lock operations are invisible and every
// guarded member looks racy. std::mutex goes through pthread, which TSan
// intercepts, so the collector's concurrency is really checked.
#ifndef VLLM_PROFILER_COLLECTOR_MUTEX_H_
#define VLLM_PROFILER_COLLECTOR_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace vllm_profiler {
namespace collector {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

class CondVar {
 public:
  // Both wait with `mu` held (released while waiting) and return true when
  // the time ran out (spurious wake-ups return false; callers loop).
  bool WaitWithTimeout(Mutex* mu, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return WaitWithDeadline(mu, absl::Now() + timeout);
  }
  bool WaitWithDeadline(Mutex* mu, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    bool timed_out;
    if (deadline == absl::InfiniteFuture()) {
      cv_.wait(lock);
      timed_out = false;
    } else {
      timed_out = cv_.wait_until(lock, absl::ToChronoTime(deadline)) ==
                  std::cv_status::timeout;
    }
    lock.release();  // Still held: the caller's lock owns it.
    return timed_out;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace collector
}  // namespace vllm_profiler

#endif  // VLLM_PROFILER_COLLECTOR_MUTEX_H_
