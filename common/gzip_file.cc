#include "common/gzip_file.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace vllm_profiler {
namespace {

class GzipWritableFile : public WritableFile {
 public:
  GzipWritableFile(std::unique_ptr<WritableFile> inner, int level)
      : inner_(std::move(inner)), compressor_(level) {}

  absl::Status Append(absl::string_view data) override {
    out_.clear();
    absl::Status s = compressor_.Compress(data, false, &out_);
    if (!s.ok()) return s;
    if (out_.empty()) return absl::OkStatus();
    return inner_->Append(out_);
  }

  absl::Status Close() override {
    out_.clear();
    absl::Status s = compressor_.Compress({}, true, &out_);
    if (s.ok() && !out_.empty()) s = inner_->Append(out_);
    absl::Status c = inner_->Close();
    return s.ok() ? c : s;
  }

 private:
  std::unique_ptr<WritableFile> inner_;
  GzipCompressor compressor_;
  std::string out_;
};

}  // namespace

std::unique_ptr<WritableFile> NewGzipWritableFile(
    std::unique_ptr<WritableFile> inner, int level) {
  return std::make_unique<GzipWritableFile>(std::move(inner), level);
}

}  // namespace vllm_profiler
