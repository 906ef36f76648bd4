// FileSystem: the seam between clicklake's storage code and the OS.
//
// The event log and the Delta committer do all their file I/O through this
// interface so that tests can inject faults. Two implementations:
//   - FileSystem::Default(): POSIX, process-wide singleton, thread-safe.
//   - FaultInjectionFileSystem (fault_injection_fs.h): wraps another file system,
//     remembers what was synced, can "crash" (drop everything unsynced) and can
//     fail the next write / sync / rename / link.
//
// Durability contract (as POSIX): data appended to a WritableFile is durable
// after Sync(); a newly created name (file, link, rename target) is durable
// after SyncDir() of its directory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace clicklake {

// A file opened for appending. Not thread-safe: one writer at a time.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(std::string_view data) = 0;
  // Makes everything appended so far durable (fdatasync).
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
  // Bytes in the file, including what was appended but not yet synced.
  virtual uint64_t Size() const = 0;
};

// A file opened for positional reads. Thread-safe.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads up to n bytes at offset into *out (resized to what was read; short at EOF).
  virtual Status Read(uint64_t offset, size_t n, std::string* out) const = 0;
  virtual Result<uint64_t> Size() const = 0;
};

struct FileInfo {
  std::string name;  // entry name within the listed directory
  bool is_dir = false;
  uint64_t size = 0;
  int64_t mtime_ms = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // The process-wide POSIX file system.
  static FileSystem* Default();

  // Creates or truncates.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  // Opens for append, creating if absent.
  virtual Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) = 0;
  virtual Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) = 0;

  virtual Result<std::string> ReadFile(const std::string& path);
  // Writes `data` to `path` (create/truncate) and syncs it.
  virtual Status WriteFile(const std::string& path, std::string_view data);

  virtual bool Exists(const std::string& path) = 0;
  virtual Result<FileInfo> Stat(const std::string& path) = 0;
  // Entries of a directory (no "." or ".."), unsorted.
  virtual Result<std::vector<FileInfo>> ListDir(const std::string& dir) = 0;
  // Creates a directory and its missing parents; OK if it exists.
  virtual Status CreateDirs(const std::string& dir) = 0;
  virtual Status DeleteFile(const std::string& path) = 0;
  // Deletes a directory tree; OK if absent.
  virtual Status DeleteTree(const std::string& dir) = 0;
  // Atomically replaces `to` with `from` (POSIX rename: overwrites).
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // Creates `to` as a hard link to `from`; AlreadyExists if `to` exists. This is
  // the put-if-absent primitive of Delta commits.
  virtual Status Link(const std::string& from, const std::string& to) = 0;
  virtual Status Truncate(const std::string& path, uint64_t size) = 0;
  // Makes creations, renames and deletions in `dir` durable.
  virtual Status SyncDir(const std::string& dir) = 0;
};

// Path helpers (plain '/' joining; no normalisation beyond that).
std::string JoinPath(std::string_view a, std::string_view b);
std::string DirName(std::string_view path);
std::string BaseName(std::string_view path);

}  // namespace clicklake
