// `nnmark serve` as a child process of a test, on a free port of 127.0.0.1, and an
// HTTP client for it: for the serving tests (test_serve_cli.cpp, test_dawn_cli.cpp).
#pragma once

#include "cli_runner.hpp"

#include "nnmark/data/dataset.hpp"
#include "nnmark/serve/predict_request.hpp"

#include <doctest/doctest.h>
#include <httplib.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <memory>
#include <spawn.h>
#include <string>
#include <string_view>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace nnmark::testing {

// {"instances": [...]} of `count` images of `data` from `first`, as 0-255 integers.
inline std::string body_of(const dataset& data, index_t first, index_t count) {
    return predict_request_body(count, data.item_shape(), image_layout::hwc, "",
                                [&](index_t i) { return data.images.item(first + i); });
}

// `nnmark serve --port 0` on 127.0.0.1 for the lifetime of this object: started in the
// constructor, which waits for the printed port; stopped (SIGTERM, then SIGKILL) and
// reaped in stop() or the destructor, so a failing check never leaves it running.
class server_process {
public:
    server_process(const std::filesystem::path& model, const std::string& flags, const temp_dir& dir)
        : out_(dir / ("serve-" + std::to_string(++started_) + ".out")), err_(out_.string() + ".err") {
        std::vector<std::string> args{NNMARK_TOOL_PATH, "serve",  "--model", model.string(), "--host",
                                      "127.0.0.1",      "--port", "0",       "--threads",    "2"};
        for (std::size_t from = 0; from < flags.size();) {
            const std::size_t to = std::min(flags.find(' ', from), flags.size());
            if (to > from) args.push_back(flags.substr(from, to - from));
            from = to + 1;
        }
        spawn(args);
        wait_for_port();
    }
    ~server_process() { stop(); }
    server_process(const server_process&) = delete;
    server_process& operator=(const server_process&) = delete;

    int port() const { return port_; }
    pid_t pid() const { return pid_; }
    std::string out() const { return slurp(out_); }
    std::string err() const { return slurp(err_); }

    // True while the process runs.
    bool alive() {
        if (pid_ <= 0) return false;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == 0) return true;
        pid_ = -1;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return false;
    }

    // SIGTERM, then SIGKILL after 10 s; returns the exit code (-1 when killed).
    int stop() {
        if (!alive()) return exit_code_;
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 1000 && alive(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (alive()) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
            exit_code_ = -1;
        }
        return exit_code_;
    }

    // Resident memory in kB, from /proc/PID/status.
    long rss_kb() const {
        const std::string status = slurp("/proc/" + std::to_string(pid_) + "/status");
        const std::size_t at = status.find("VmRSS:");
        return at == std::string::npos ? -1 : std::stol(status.substr(at + 6));
    }

private:
    void spawn(const std::vector<std::string>& args) {
        posix_spawn_file_actions_t files;
        posix_spawn_file_actions_init(&files);
        posix_spawn_file_actions_addopen(&files, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&files, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        std::vector<char*> argv;
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        // Under AddressSanitizer freed memory sits in a quarantine of 256 MB, which would
        // look like growth to the memory check; a small one keeps RSS meaningful.
        std::vector<std::string> env_strings;
        for (char** e = environ; *e; ++e)
            if (!std::string_view(*e).starts_with("ASAN_OPTIONS=")) env_strings.emplace_back(*e);
        const char* asan = std::getenv("ASAN_OPTIONS");
        env_strings.push_back(std::string("ASAN_OPTIONS=") + (asan ? std::string(asan) + ":" : "") +
                              "quarantine_size_mb=4");
        std::vector<char*> env;
        for (auto& s : env_strings) env.push_back(s.data());
        env.push_back(nullptr);
        const int failed = posix_spawn(&pid_, argv[0], &files, nullptr, argv.data(), env.data());
        posix_spawn_file_actions_destroy(&files);
        REQUIRE_MESSAGE(failed == 0, "cannot start " << argv[0]);
    }

    // The port from "listening on http://127.0.0.1:PORT", within 60 s (sanitizer builds are slow).
    void wait_for_port() {
        const std::string marker = "listening on http://127.0.0.1:";
        for (int i = 0; i < 6000; ++i) {
            const std::string out = slurp(out_);
            if (const std::size_t at = out.find(marker);
                at != std::string::npos && out.find('(', at) != std::string::npos) {
                port_ = std::stoi(out.substr(at + marker.size()));
                return;
            }
            REQUIRE_MESSAGE(alive(), "nnmark serve exited: " << err());
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        FAIL("nnmark serve printed no port within 60 s: " << err());
    }

    static inline int started_ = 0;
    std::filesystem::path out_, err_;
    pid_t pid_ = -1;
    int exit_code_ = -1;
    int port_ = 0;
};

std::unique_ptr<httplib::Client> client_of(const server_process& server) {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", server.port());
    client->set_connection_timeout(std::chrono::seconds(10));
    client->set_read_timeout(std::chrono::seconds(30));
    client->set_write_timeout(std::chrono::seconds(30));
    client->set_tcp_nodelay(true);
    return client;
}

}  // namespace nnmark::testing
