// Writes a file so that a crash never leaves a half-written one behind: data goes to a temp file in the
// destination folder, which is fsynced and renamed over the destination only by commit(). The temp file is
// named <path>.tmp.<pid>.XXXXXX; a process killed mid-write leaves its file behind, and the next AtomicFile
// for the same path removes those whose process no longer runs.
#pragma once
#include <cstddef>
#include <string>

namespace moe {

class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);  // creates the temp file; throws Error naming the path
  ~AtomicFile();                                 // removes the temp file unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);
  void write_zeros(size_t n);
  size_t bytes_written() const { return written_; }
  void commit();  // fsync + rename; the destination now holds exactly what was written

 private:
  std::string path_, tmp_path_;
  int fd_ = -1;
  size_t written_ = 0;
  bool committed_ = false;
};

// Convenience: atomically replace `path` with `bytes`.
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace moe
