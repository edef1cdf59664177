#include "probe/core/string_table.h"

namespace vllm_profiler::probe {

StringTable::StringTable(Options options) : options_(options) {}

uint32_t StringTable::Intern(std::string_view value) {
  MutexLock lock(&mu_);
  auto it = ids_.find(value);
  if (it != ids_.end()) return it->second;
  if (by_id_.size() >= options_.max_strings) {
    if (overflow_id_ == 0) {
      by_id_.emplace_back("<names table full>");
      overflow_id_ = static_cast<uint32_t>(by_id_.size());
      ids_.emplace(by_id_.back(), overflow_id_);
    }
    return overflow_id_;
  }
  const uint32_t id = static_cast<uint32_t>(by_id_.size() + 1);
  by_id_.emplace_back(value);
  ids_.emplace(by_id_.back(), id);
  return id;
}

void StringTable::AppendNew(uint32_t* watermark, v1::EventBatch* batch) {
  MutexLock lock(&mu_);
  for (uint32_t id = *watermark + 1; id <= by_id_.size(); ++id) {
    v1::InternedString* s = batch->add_strings();
    s->set_id(id);
    s->set_value(by_id_[id - 1]);
  }
  *watermark = static_cast<uint32_t>(by_id_.size());
}

size_t StringTable::size() const {
  MutexLock lock(&mu_);
  return by_id_.size();
}

}  // namespace vllm_profiler::probe
