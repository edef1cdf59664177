#include "common/filesystem.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/filesystem_testing.h"
#include "gtest/gtest.h"

namespace vllm_profiler {
namespace {

std::string TmpDir() {
  const char* d = std::getenv("TEST_TMPDIR");
  return d != nullptr ? d : "/tmp";
}

uint32_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

TEST(FilesystemTest, WriteFileAtomicallyReplacesTheFileWholeAndLeavesNoTemp) {
  Filesystem* fs = Filesystem::Default();
  const std::string path = TmpDir() + "/atomic.txt";
  ASSERT_TRUE(fs->WriteFileAtomically(path, "old").ok());
  ASSERT_TRUE(fs->WriteFileAtomically(path, "new contents").ok());
  EXPECT_EQ(*fs->ReadSmallFile(path, 100), "new contents");
  EXPECT_EQ(fs->Stat(path + ".tmp").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(FilesystemTest, WriteFileAtomicallySetsTheExactModeWhenGiven) {
  Filesystem* fs = Filesystem::Default();
  const std::string key = TmpDir() + "/tls.key";
  ASSERT_TRUE(fs->WriteFileAtomically(key, "secret", 0600).ok());
  EXPECT_EQ(ModeOf(key), 0600u);
  // An existing file with a wider mode is replaced by a private one.
  const std::string wide = TmpDir() + "/wide.key";
  ASSERT_TRUE(fs->WriteFileAtomically(wide, "x", 0644).ok());
  EXPECT_EQ(ModeOf(wide), 0644u);
  ASSERT_TRUE(fs->WriteFileAtomically(wide, "y", 0600).ok());
  EXPECT_EQ(ModeOf(wide), 0600u);
}

TEST(FilesystemTest, FailedAtomicWriteKeepsTheOldFileAndRemovesTheTemp) {
  FaultyFilesystem fs;
  const std::string path = TmpDir() + "/kept.txt";
  ASSERT_TRUE(fs.WriteFileAtomically(path, "old").ok());
  fs.FailWritesAfter(0);
  absl::Status s = fs.WriteFileAtomically(path, "new");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(),
            "write " + path + ".tmp: " + std::string(strerror(ENOSPC)));
  EXPECT_EQ(*fs.ReadSmallFile(path, 100), "old");
  EXPECT_EQ(fs.Stat(path + ".tmp").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(FilesystemTest, WriteIntoAMissingFolderNamesThePath) {
  absl::Status s = Filesystem::Default()->WriteFileAtomically(
      TmpDir() + "/no/such/dir/f", "x");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "create " + TmpDir() +
                             "/no/such/dir/f.tmp: No such file or directory");
}

}  // namespace
}  // namespace vllm_profiler
