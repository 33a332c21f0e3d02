// file_checks: what kind of file a path names, checked before it is opened or replaced.
//
// nnmark reads only regular files and replaces only regular files: a FIFO opened for
// reading blocks until a writer comes (a hang), a directory or a device reports sizes that
// are not its content, and renaming a new file onto /dev/null replaces the device node.
// Paths are compared by device and inode when both exist (hard links, symlinks, "./x"
// and "x" are one file), otherwise by their weakly canonical form.
#pragma once

#include "nnmark/core/error.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include <sys/stat.h>

namespace nnmark {

// "a FIFO", "a directory", ... for the file type bits of `mode`.
inline std::string file_type_name(mode_t mode) {
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "a special file";
}

// The status of what `path` names (symlinks followed), or nothing when it does not exist.
inline std::optional<struct stat> file_status(const std::filesystem::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) return st;
    return std::nullopt;
}

// io_error unless `st` (of `path`) is a regular file; `purpose` is "read" or "replace".
inline void expect_regular(const struct stat& st, const std::filesystem::path& path, const std::string& purpose) {
    if (!S_ISREG(st.st_mode))
        throw io_error("cannot " + purpose + " '" + path.string() + "': it is " + file_type_name(st.st_mode) +
                       ", not a regular file");
}

// io_error when `path` exists and is not a regular file: nnmark only replaces regular files.
inline void expect_replaceable(const std::filesystem::path& path) {
    if (const auto st = file_status(path)) expect_regular(*st, path, "replace");
}

// Whether `a` and `b` name the same file: same device and inode when both exist, the
// same weakly canonical path otherwise (an output not written yet).
inline bool same_file(const std::filesystem::path& a, const std::filesystem::path& b) {
    const auto sa = file_status(a), sb = file_status(b);
    if (sa && sb) return sa->st_dev == sb->st_dev && sa->st_ino == sb->st_ino;
    std::error_code ea, eb;
    const auto ca = std::filesystem::weakly_canonical(a, ea), cb = std::filesystem::weakly_canonical(b, eb);
    return !ea && !eb && ca == cb;
}

}  // namespace nnmark
