// Replays a fuzz corpus through LLVMFuzzerTestOneInput (libFuzzer's entry
// point), so every fuzz target's corpus runs as a plain test under
// `bazel test` (and under --config=asan). Fails when a folder is missing or
// empty: a replay test that reads nothing cannot fail.
#include <dirent.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool ReplayFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                          std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()),
                         bytes.size());
  return true;
}

int ReplayPath(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    std::fprintf(stderr, "replay: cannot stat %s\n", path.c_str());
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) return ReplayFile(path) ? 1 : -1;
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return -1;
  int count = 0;
  while (dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    int n = ReplayPath(path + "/" + name);
    if (n < 0) {
      closedir(dir);
      return -1;
    }
    count += n;
  }
  closedir(dir);
  return count;
}

}  // namespace

int main(int argc, char** argv) {
  int total = 0;
  for (int i = 1; i < argc; ++i) {
    int n = ReplayPath(argv[i]);
    if (n < 0) return 1;
    total += n;
  }
  std::printf("replayed %d corpus inputs\n", total);
  return total > 0 ? 0 : 1;
}
