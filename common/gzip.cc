#include "common/gzip.h"

#include <zlib.h>

#include "absl/strings/str_cat.h"

namespace vllm_profiler {
namespace {
constexpr size_t kChunk = 64 * 1024;
}  // namespace

struct GzipCompressor::State {
  z_stream z{};
  bool ok = false;
  bool finished = false;
};

GzipCompressor::GzipCompressor(int level) : state_(new State) {
  // 15 + 16: 32 KiB window, gzip header and trailer.
  state_->ok = deflateInit2(&state_->z, level, Z_DEFLATED, 15 + 16, 8,
                            Z_DEFAULT_STRATEGY) == Z_OK;
}

GzipCompressor::~GzipCompressor() {
  if (state_->ok) deflateEnd(&state_->z);
}

absl::Status GzipCompressor::Compress(absl::string_view in, bool finish,
                                      std::string* out) {
  if (!state_->ok) return absl::InternalError("zlib deflateInit2 failed");
  if (state_->finished) return absl::FailedPreconditionError("gzip finished");
  z_stream& z = state_->z;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  const int flush = finish ? Z_FINISH : Z_NO_FLUSH;
  while (true) {
    size_t old = out->size();
    out->resize(old + kChunk);
    z.next_out = reinterpret_cast<Bytef*>(&(*out)[old]);
    z.avail_out = kChunk;
    int rc = deflate(&z, flush);
    out->resize(old + kChunk - z.avail_out);
    if (rc == Z_STREAM_END) {
      state_->finished = true;
      return absl::OkStatus();
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return absl::InternalError(absl::StrCat("zlib deflate failed: ", rc));
    }
    if (!finish && z.avail_in == 0 && z.avail_out != 0) return absl::OkStatus();
  }
}

struct GzipDecompressor::State {
  z_stream z{};
  bool ok = false;
  bool done = false;
};

GzipDecompressor::GzipDecompressor() : state_(new State) {
  state_->ok = inflateInit2(&state_->z, 15 + 16) == Z_OK;
}

GzipDecompressor::~GzipDecompressor() {
  if (state_->ok) inflateEnd(&state_->z);
}

bool GzipDecompressor::done() const { return state_->done; }

absl::Status GzipDecompressor::Decompress(absl::string_view in,
                                          std::string* out) {
  if (!state_->ok) return absl::InternalError("zlib inflateInit2 failed");
  z_stream& z = state_->z;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  while (!state_->done) {
    size_t old = out->size();
    out->resize(old + kChunk);
    z.next_out = reinterpret_cast<Bytef*>(&(*out)[old]);
    z.avail_out = kChunk;
    int rc = inflate(&z, Z_NO_FLUSH);
    out->resize(old + kChunk - z.avail_out);
    if (rc == Z_STREAM_END) {
      state_->done = true;
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return absl::DataLossError(absl::StrCat(
          "corrupt gzip data: ", z.msg != nullptr ? z.msg : "zlib error"));
    } else if (z.avail_out != 0) {
      break;  // All input consumed and all output drained.
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Gunzip(absl::string_view data, size_t max_out) {
  GzipDecompressor d;
  std::string out;
  // Fed in slices so the output bound holds before a bomb expands fully.
  constexpr size_t kSlice = 64 * 1024;
  for (size_t off = 0; off < data.size() && !d.done(); off += kSlice) {
    absl::Status s = d.Decompress(data.substr(off, kSlice), &out);
    if (!s.ok()) return s;
    if (out.size() > max_out) {
      return absl::ResourceExhaustedError(
          absl::StrCat("gzip data expands beyond ", max_out, " bytes"));
    }
  }
  if (!d.done()) return absl::DataLossError("truncated gzip stream");
  return out;
}

bool LooksGzipped(absl::string_view data) {
  return data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x1f &&
         static_cast<unsigned char>(data[1]) == 0x8b;
}

}  // namespace vllm_profiler
