// Mutex, MutexLock and CondVar: std::mutex / std::condition_variable with
// clang thread-safety annotations.
//
// Why not absl::Mutex: Debian's abseil is built without ThreadSanitizer
// annotations, so under --config=tsan every absl::Mutex is invisible and
// each access it guards is reported as a race. std::mutex goes through
// pthread, which TSan intercepts. These wrappers keep ABSL_GUARDED_BY
// checking (-Wthread-safety) working on top of it.
//
// Thread safety: as std::mutex. Not recursive.
#ifndef VLLM_PROFILER_COMMON_MUTEX_H_
#define VLLM_PROFILER_COMMON_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace vllm_profiler {

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

// Holds `mu` for its scope.
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

// A condition variable used with Mutex.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Waits until `pred()` holds (checked with `mu` held) or `timeout`
  // passes; returns pred()'s final value. `mu` must be held.
  template <class Pred>
  bool WaitFor(Mutex* mu, absl::Duration timeout, Pred pred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool result =
        cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), pred);
    lock.release();  // Still held by the caller's MutexLock.
    return result;
  }

  // Wait with `mu` held (released while waiting); return true when the time
  // ran out. Spurious wake-ups return false: callers loop on their condition.
  bool WaitWithTimeout(Mutex* mu, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return WaitWithDeadline(mu, absl::Now() + timeout);
  }
  bool WaitWithDeadline(Mutex* mu, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    bool timed_out = false;
    if (deadline == absl::InfiniteFuture()) {
      cv_.wait(lock);
    } else {
      timed_out = cv_.wait_until(lock, absl::ToChronoTime(deadline)) ==
                  std::cv_status::timeout;
    }
    lock.release();  // Still held by the caller's MutexLock.
    return timed_out;
  }

  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace vllm_profiler

#endif  // VLLM_PROFILER_COMMON_MUTEX_H_
