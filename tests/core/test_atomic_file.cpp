// atomic_file and file_checks: only regular files are read (a FIFO is refused at once,
// not waited on) and replaced (a device node stays a device node); temporary files of
// killed saves are removed, those of running ones kept; staged files appear together.
#include "nnmark/core/atomic_file.hpp"
#include "nnmark/core/file_checks.hpp"

#include "../support/files.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace nnmark;
using namespace nnmark::testing;

namespace atomic_file_test {

std::vector<std::string> names_in(const std::filesystem::path& dir) {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

// The pid of a process that has exited (and been reaped): no save of it is running.
pid_t dead_pid() {
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    int status = 0;
    ::waitpid(child, &status, 0);
    return child;
}

}  // namespace atomic_file_test
using namespace atomic_file_test;

TEST_CASE("read_file: a FIFO, a directory and a device are refused before reading, naming what they are") {
    temp_dir dir;
    const auto fifo = dir / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    // Without a writer, opening the FIFO to read would block forever.
    CHECK_THROWS_WITH_AS(read_file(fifo), doctest::Contains("is a FIFO, not a regular file"), io_error);
    CHECK_THROWS_WITH_AS(read_file(dir.path), doctest::Contains("is a directory"), io_error);
    CHECK_THROWS_WITH_AS(read_file("/dev/zero"), doctest::Contains("is a character device"), io_error);
    write_file_atomically(dir / "plain", std::string("abc"));
    CHECK(read_file(dir / "plain") == bytes{'a', 'b', 'c'});
}

TEST_CASE("write_file_atomically: only a regular file or a new path is replaced") {
    temp_dir dir;
    // A symlink to /dev/null: were the check missing, the rename would replace the link,
    // not the machine's /dev/null.
    const auto null_link = dir / "null";
    std::filesystem::create_symlink("/dev/null", null_link);
    CHECK_THROWS_WITH_AS(write_file_atomically(null_link, std::string("x")),
                         doctest::Contains("is a character device, not a regular file"), io_error);
    CHECK(std::filesystem::is_symlink(null_link));
    std::filesystem::create_directory(dir / "sub");
    CHECK_THROWS_WITH_AS(write_file_atomically(dir / "sub", std::string("x")), doctest::Contains("is a directory"),
                         io_error);
    const auto fifo = dir / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK_THROWS_AS(write_file_atomically(fifo, std::string("x")), io_error);
    CHECK(names_in(dir.path) == std::vector<std::string>{"fifo", "null", "sub"});  // no temporary file left
}

TEST_CASE("write_file_atomically: temporary files of killed saves are removed, those of running saves kept") {
    temp_dir dir;
    const std::string killed = ".model.tmp-" + std::to_string(dead_pid()) + "-abcdef";
    const std::string staged_killed = "." + killed + ".tmp-" + std::to_string(dead_pid()) + "-ghijkl";
    const std::string running = ".model.tmp-" + std::to_string(::getpid()) + "-mnopqr";
    const std::string other = ".other.tmp-" + std::to_string(dead_pid()) + "-stuvwx";
    for (const auto& name : {killed, staged_killed, running, other}) write_bytes(dir / name, bytes{1});
    write_file_atomically(dir / "model", std::string("new"));
    CHECK(names_in(dir.path) == std::vector<std::string>{running, other, "model"});
}

TEST_CASE("staged_files: nothing changes before commit, all files after it, and nothing is left on failure") {
    temp_dir dir;
    write_file_atomically(dir / "key", std::string("old key"));
    {
        staged_files staged;
        write_file_atomically(staged.stage(dir / "model"), std::string("model"));
        write_file_atomically(staged.stage(dir / "key"), std::string("new key"));
        CHECK(read_file(dir / "key") == bytes{'o', 'l', 'd', ' ', 'k', 'e', 'y'});
        CHECK(!std::filesystem::exists(dir / "model"));
        // Destroyed without commit (a failed run): the staged files go, the old key stays.
    }
    CHECK(names_in(dir.path) == std::vector<std::string>{"key"});
    {
        staged_files staged;
        write_file_atomically(staged.stage(dir / "model"), std::string("model"));
        write_file_atomically(staged.stage(dir / "key"), std::string("new key"));
        staged.commit();
    }
    CHECK(names_in(dir.path) == std::vector<std::string>{"key", "model"});
    CHECK(read_file(dir / "key") == bytes{'n', 'e', 'w', ' ', 'k', 'e', 'y'});
}

TEST_CASE("same_file: one file under two names, and paths not written yet") {
    temp_dir dir;
    write_file_atomically(dir / "a", std::string("a"));
    std::filesystem::create_hard_link(dir / "a", dir / "hard");
    std::filesystem::create_symlink(dir / "a", dir / "soft");
    CHECK(same_file(dir / "a", dir / "hard"));
    CHECK(same_file(dir / "a", dir / "soft"));
    CHECK(same_file(dir / "new", dir.path / "." / "new"));
    CHECK(!same_file(dir / "a", dir / "new"));
    CHECK(!same_file(dir / "new", dir / "other"));
}
