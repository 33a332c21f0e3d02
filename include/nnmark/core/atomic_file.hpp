// atomic_file: write a whole file so that readers see either the old file or the new
// one, never a half-written one (temp file in the same directory, fsync, rename), and
// read a whole regular file.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/file_checks.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace nnmark {

namespace detail {
inline std::string os_error(const std::string& what, const std::filesystem::path& path) {
    return what + " '" + path.string() + "': " + std::strerror(errno);
}

// Temporary files for `path` are ".<name>.tmp-<pid>-XXXXXX" in its directory: the pid
// tells a save still running (another process writing the same path) from one that was
// killed, whose temporary file nobody will ever rename or remove.
inline std::string temp_prefix(const std::filesystem::path& path) {
    return std::string(".").append(path.filename().string()).append(".tmp-");
}

// Removes the temporary files of `path` left by saves whose process no longer exists.
inline void remove_stale_temps(const std::filesystem::path& dir, const std::filesystem::path& path) {
    const std::string prefix = temp_prefix(path);
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        std::string name = entry.path().filename().string();
        // (a temporary file of a staged file, staged_files below, has one more leading dot)
        if (name.starts_with("..")) name.erase(0, 1);
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
        char* end = nullptr;
        const long pid = std::strtol(name.c_str() + prefix.size(), &end, 10);
        if (pid <= 0 || *end != '-') continue;  // not a name this writer makes
        if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) std::filesystem::remove(entry.path(), ec);
    }
}

// A new temporary file next to `path` (its directory must exist), open for writing;
// `path` itself must be absent or a regular file (core/file_checks.hpp).
inline int create_temp_for(const std::filesystem::path& path, std::string& temp) {
    namespace fs = std::filesystem;
    const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    if (!fs::is_directory(dir))
        throw io_error(std::string("cannot write '").append(path.string()).append("': directory '").append(dir.string()).append("' does not exist"));
    expect_replaceable(path);
    remove_stale_temps(dir, path);
    // (append, not "literal" + string: the latter trips GCC 12's -Wrestrict false positive)
    temp = (dir / temp_prefix(path).append(std::to_string(::getpid())).append("-XXXXXX")).string();
    const int fd = ::mkstemp(temp.data());
    if (fd < 0) throw io_error(detail::os_error("cannot create a temporary file for", path));
    return fd;
}
}  // namespace detail

// Replace `path` with `chunks` written one after another, with permissions `mode`
// (0600 for a secret only its owner may read).
inline void write_file_atomically(const std::filesystem::path& path,
                                  std::span<const std::span<const unsigned char>> chunks, mode_t mode = 0644) {
    std::string tmpl;
    const int fd = detail::create_temp_for(path, tmpl);
    auto fail = [&](const std::string& what) {
        const std::string message = detail::os_error(what, path);
        ::close(fd);
        ::unlink(tmpl.c_str());
        throw io_error(message);
    };
    for (auto chunk : chunks) {
        const unsigned char* p = chunk.data();
        std::size_t left = chunk.size();
        while (left > 0) {
            const ssize_t n = ::write(fd, p, left);
            if (n < 0) {
                if (errno == EINTR) continue;
                fail("cannot write");
            }
            p += n;
            left -= static_cast<std::size_t>(n);
        }
    }
    if (::fchmod(fd, mode) != 0) fail("cannot set permissions of");
    if (::fsync(fd) != 0) fail("cannot flush");
    if (::close(fd) != 0) {
        const std::string message = detail::os_error("cannot close", path);
        ::unlink(tmpl.c_str());
        throw io_error(message);
    }
    if (std::rename(tmpl.c_str(), path.c_str()) != 0) {
        const std::string message = detail::os_error("cannot rename temporary file onto", path);
        ::unlink(tmpl.c_str());
        throw io_error(message);
    }
}

inline void write_file_atomically(const std::filesystem::path& path, std::span<const unsigned char> bytes,
                                  mode_t mode = 0644) {
    const std::span<const unsigned char> chunks[] = {bytes};
    write_file_atomically(path, chunks, mode);
}

inline void write_file_atomically(const std::filesystem::path& path, const std::string& text) {
    write_file_atomically(path, std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(text.data()), text.size()));
}

// The whole content of a regular file, or io_error naming it. Opened without blocking
// and checked before reading: a FIFO or a device is refused at once instead of hanging
// or reading forever. One read of the known size: the 47 MB MNIST training images load
// in a few milliseconds.
inline std::vector<unsigned char> read_file(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) throw io_error(detail::os_error("cannot open", path));
    struct closer {
        int fd;
        ~closer() { ::close(fd); }
    } guard{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw io_error(detail::os_error("cannot determine the size of", path));
    expect_regular(st, path, "read");
    std::vector<unsigned char> bytes(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw io_error(detail::os_error("cannot read", path));
        if (n == 0) throw io_error("cannot read '" + path.string() + "': it shrank while being read");
        done += static_cast<std::size_t>(n);
    }
    return bytes;
}

// Several files that must appear together (a model and its key): each is first written
// to a temporary path of its own (stage(), then any atomic writer), and commit() renames
// them all at the end. Until then no final path changes; temporary files not committed
// are removed when the object goes, so a failed run leaves nothing behind.
class staged_files {
public:
    staged_files() = default;
    staged_files(const staged_files&) = delete;
    staged_files& operator=(const staged_files&) = delete;
    ~staged_files() {
        for (const auto& s : staged_) ::unlink(s.temp.c_str());
    }

    // Where to write what is to become `path`.
    std::filesystem::path stage(const std::filesystem::path& path) {
        std::string temp;
        const int fd = detail::create_temp_for(path, temp);
        ::close(fd);
        staged_.push_back({path, temp});
        return temp;
    }

    // Renames every staged file onto its path, in the order staged.
    void commit() {
        while (!staged_.empty()) {
            const auto& s = staged_.front();
            if (std::rename(s.temp.c_str(), s.path.c_str()) != 0)
                throw io_error(detail::os_error("cannot rename temporary file onto", s.path));
            staged_.erase(staged_.begin());
        }
    }

private:
    struct staged {
        std::filesystem::path path;
        std::string temp;
    };
    std::vector<staged> staged_;
};

}  // namespace nnmark
