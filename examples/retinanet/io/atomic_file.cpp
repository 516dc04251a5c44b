// io/atomic_file.cpp: the temporary file, its commit by rename, and the removal of temporary files
// whose writer died (POSIX: open, write, fsync, kill(pid, 0)).
#include "io/atomic_file.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

#include <focal/core/error.hpp>

#include "support/check.hpp"

namespace retinanet::io::detail {
namespace {

namespace fs = std::filesystem;

std::string quoted(const fs::path& file) { return concat("'", file.string(), "'"); }

// The directory `file` lies in: its parent, or "." for a bare name.
fs::path directory_of(const fs::path& file) { return file.parent_path().empty() ? fs::path(".") : file.parent_path(); }

}  // namespace

template <class... Parts>
[[noreturn]] void atomic_file::fail(const Parts&... parts) const {
    throw focal::error(concat(context_, ": ", parts...));
}

atomic_file::atomic_file(const fs::path& target, std::string context)
    : target_(target), context_(std::move(context)) {
    const fs::path dir = directory_of(target_);
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) fail("directory ", quoted(dir), " does not exist");
    if (target_.filename().empty()) fail("expected a file name, got a directory path");
    path_ = target_;
    path_ += concat(".tmp-", ::getpid());
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd_ < 0) fail("cannot create ", quoted(path_), ": ", std::strerror(errno));
}

atomic_file::~atomic_file() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) {
        std::error_code ec;
        fs::remove(path_, ec);
    }
}

void atomic_file::write(const void* data, std::size_t size) {
    auto p = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t n = ::write(fd_, p, std::min<std::size_t>(size, std::size_t{1} << 30));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("cannot write ", quoted(path_), ": ", std::strerror(errno));
        p += n;
        size -= static_cast<std::size_t>(n);
    }
}

void atomic_file::commit() {
    if (::fsync(fd_) != 0) fail("cannot flush ", quoted(path_), " to disk: ", std::strerror(errno));
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) fail("cannot close ", quoted(path_), ": ", std::strerror(errno));
    std::error_code ec;
    fs::rename(path_, target_, ec);
    if (ec) fail("cannot rename ", quoted(path_), " to ", quoted(target_), ": ", ec.message());
    committed_ = true;
    // Make the rename itself durable; failing here loses nothing already written.
    const fs::path dir = directory_of(target_);
    if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

std::size_t remove_stale_temporaries(const fs::path& target) {
    const fs::path dir = directory_of(target);
    const std::string prefix = target.filename().string() + ".tmp-";
    std::size_t removed = 0;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind(prefix, 0) != 0) continue;
        const std::string pid_text = name.substr(prefix.size());
        if (pid_text.empty() || pid_text.size() > 9 || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
        const auto pid = static_cast<pid_t>(std::stol(pid_text));
        // Signal 0 probes for the process: ESRCH means its writer is gone (killed mid-write).
        if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
        removed += fs::remove(entry.path(), ec) ? 1 : 0;
    }
    return removed;
}

}  // namespace retinanet::io::detail
