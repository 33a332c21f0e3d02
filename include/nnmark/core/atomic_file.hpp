// atomic_file: write a whole file so that readers see either the old file or the new
// one, never a half-written one (temp file in the same directory, fsync, rename).
#pragma once

#include "nnmark/core/error.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
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
}  // namespace detail

// Replace `path` with `chunks` written one after another.
inline void write_file_atomically(const std::filesystem::path& path,
                                  std::span<const std::span<const unsigned char>> chunks) {
    namespace fs = std::filesystem;
    const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    if (!fs::is_directory(dir))
        throw io_error(std::string("cannot write '").append(path.string()).append("': directory '").append(dir.string()).append("' does not exist"));
    // (append, not "literal" + string: the latter trips GCC 12's -Wrestrict false positive)
    std::string tmpl = (dir / std::string(".").append(path.filename().string()).append(".tmp-XXXXXX")).string();
    const int fd = ::mkstemp(tmpl.data());
    if (fd < 0) throw io_error(detail::os_error("cannot create a temporary file for", path));
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
    if (::fchmod(fd, 0644) != 0) fail("cannot set permissions of");
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

inline void write_file_atomically(const std::filesystem::path& path, std::span<const unsigned char> bytes) {
    const std::span<const unsigned char> chunks[] = {bytes};
    write_file_atomically(path, chunks);
}

inline void write_file_atomically(const std::filesystem::path& path, const std::string& text) {
    write_file_atomically(path, std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(text.data()), text.size()));
}

// The whole content of a file, or io_error naming it. One read of the known size:
// the 47 MB MNIST training images load in a few milliseconds.
inline std::vector<unsigned char> read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) throw io_error(detail::os_error("cannot open", path));
    const std::streamsize size = in.tellg();
    if (size < 0) throw io_error(detail::os_error("cannot determine the size of", path));
    std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
    in.seekg(0);
    if (!in.read(reinterpret_cast<char*>(bytes.data()), size)) throw io_error(detail::os_error("cannot read", path));
    return bytes;
}

}  // namespace nnmark
