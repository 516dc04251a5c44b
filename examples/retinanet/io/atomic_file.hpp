// io/atomic_file.hpp: writing a file so that readers see the old file or the whole new one.
//
// The bytes go to "<target>.tmp-<pid>" in the target's directory (the same file system, where
// rename(2) replaces a file atomically); commit() fsyncs and closes it, renames it over the target
// and fsyncs the directory so that the rename survives a crash. Until commit() the target is
// untouched, and a failure or destruction before it removes the temporary file. A writer killed
// mid-write (SIGKILL, power loss) leaves its temporary file behind: remove_stale_temporaries.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

namespace retinanet::io::detail {

// One atomic write of `target`. Every failure is a focal::error "<context>: <what is wrong>".
class atomic_file {
public:
    // Checks that the target's directory exists and that `target` names a file, then creates the
    // temporary file. `context` names the writer and the target ("write_npz: '<file>'").
    atomic_file(const std::filesystem::path& target, std::string context);
    atomic_file(const atomic_file&) = delete;
    atomic_file& operator=(const atomic_file&) = delete;
    ~atomic_file();

    // Appends `size` bytes to the temporary file.
    void write(const void* data, std::size_t size);

    // Makes the written bytes the target's.
    void commit();

private:
    template <class... Parts>
    [[noreturn]] void fail(const Parts&... parts) const;

    std::filesystem::path path_, target_;
    std::string context_;
    int fd_ = -1;
    bool committed_ = false;
};

// Removes the "<target>.tmp-<pid>" files whose process <pid> no longer exists; returns how many.
// Never touches `target` itself.
std::size_t remove_stale_temporaries(const std::filesystem::path& target);

}  // namespace retinanet::io::detail
