// http_connection: how `nnmark serve` reads its sockets, in place of cpp-httplib's own
// connection loop. httplib 0.11.4 (Debian's) parses requests well, but its loop
//   - times out each recv, not a request: a client sending a byte a second holds a
//     worker forever, and enough of them starve every other client;
//   - makes a new buffered stream per request, so bytes of pipelined requests that the
//     previous request's stream had buffered are lost and the connection stalls;
//   - bounds no header line and no chunk framing: they grow in memory as they come.
// httplib lets a Server subclass replace process_and_close_socket (as its SSLServer
// does) and call process_request with any Stream, so the loop and the stream are ours:
//   - a request, headers and body, must arrive within a deadline from its first byte;
//     an idle keep-alive connection is closed after a limit;
//   - while accepted connections wait for a worker, no connection may hold one longer
//     than a short grace without completing a request, so slow or idle clients give
//     their workers up to the waiting ones;
//   - one stream, with one buffer, lives as long as its connection: pipelined requests
//     are answered in order;
//   - the bytes of a request's headers, and of its body as sent, are bounded.
#pragma once

#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>

namespace nnmark::cli::http {

using clock = std::chrono::steady_clock;

struct connection_limits {
    clock::duration request_time;       // a request's headers and body, from its first byte
    clock::duration idle_time;          // waiting for the next request on a connection
    clock::duration write_time;         // each write of a reply
    clock::duration pressed_time;       // both of the above while connections wait for a worker
    std::size_t header_bytes = 64 << 10;  // request line and headers
    std::size_t body_bytes = 0;           // a body as sent, chunk framing included
};

// Why a connection stopped giving a request's bytes.
enum class read_failure { none, deadline, too_large, closed };

// What a connection needs to know of the server: whether connections wait for a
// worker (then it hurries), and whether the server stops (then it does not wait).
struct server_load {
    std::atomic<int> waiting{0};
    std::atomic<bool> stopping{false};
    bool pressed() const { return waiting > 0 || stopping; }
};

// httplib's thread pool, counting the connections accepted but not yet given a worker.
class worker_pool final : public httplib::TaskQueue {
public:
    worker_pool(std::size_t workers, server_load& load) : pool_(workers), load_(load) {}

    void enqueue(std::function<void()> serve) override {
        ++load_.waiting;
        pool_.enqueue([this, serve = std::move(serve)] {
            --load_.waiting;
            serve();
        });
    }
    void shutdown() override { pool_.shutdown(); }

private:
    httplib::ThreadPool pool_;
    server_load& load_;
};

// One connection's socket, read through a buffer that outlives each request.
class connection_stream final : public httplib::Stream {
public:
    connection_stream(socket_t sock, const connection_limits& limits, const server_load& load)
        : sock_(sock), limits_(limits), load_(load) {}
    ~connection_stream() override { close(); }
    connection_stream(const connection_stream&) = delete;
    connection_stream& operator=(const connection_stream&) = delete;

    // Waits for the next request's first byte (at once when pipelined bytes are buffered)
    // and starts its deadline; false when the connection stays idle too long or closes.
    bool next_request() {
        phase_bytes_ = 0;
        in_body_ = false;
        failure_ = read_failure::none;
        started_ = clock::now();
        // Idle time is measured from here; the request's own deadline from its first byte.
        deadline_ = started_ + limits_.idle_time;
        if (end_ == begin_ && !wait_for_input()) return false;
        started_ = clock::now();
        deadline_ = started_ + limits_.request_time;
        return true;
    }

    // The headers are read (httplib's setup_request hook): the body's limit applies now.
    void headers_read() {
        in_body_ = true;
        phase_bytes_ = 0;
    }

    read_failure failure() const { return failure_; }

    // After this reply the connection closes: the rest of its input cannot be trusted.
    void close_after_reply() { linger_ = true; }
    bool closing() const { return linger_; }

    bool is_readable() const override { return end_ > begin_ || wait_for_input(); }
    bool is_writable() const override { return wait_for(POLLOUT, clock::now() + limits_.write_time); }

    ssize_t read(char* out, std::size_t size) override {
        if (end_ == begin_) {
            const ssize_t got = fill();
            if (got <= 0) return got;
        }
        // Bytes are counted as handed out, so pipelined requests are not charged to this one.
        const std::size_t n = std::min(size, end_ - begin_);
        phase_bytes_ += n;
        if (phase_bytes_ > (in_body_ ? limits_.body_bytes : limits_.header_bytes)) {
            failure_ = read_failure::too_large;
            return -1;
        }
        std::memcpy(out, buffer_.data() + begin_, n);
        begin_ += n;
        return static_cast<ssize_t>(n);
    }

    ssize_t write(const char* data, std::size_t size) override {
        if (!is_writable()) return -1;
        ssize_t sent;
        do sent = ::send(sock_, data, size, MSG_NOSIGNAL);
        while (sent < 0 && errno == EINTR);
        return sent;
    }

    void get_remote_ip_and_port(std::string& ip, int& port) const override { address(::getpeername, ip, port); }
    void get_local_ip_and_port(std::string& ip, int& port) const override { address(::getsockname, ip, port); }
    socket_t socket() const override { return sock_; }

    // Closes the socket. After a reply that left input unread, the reply is sent first and
    // the client's remaining bytes drained for a moment: closing a socket with unread
    // input sends a reset, which can destroy the reply before the client reads it.
    void close() {
        if (sock_ == INVALID_SOCKET) return;
        if (linger_) {
            ::shutdown(sock_, SHUT_WR);
            const clock::time_point until = clock::now() + std::min(limits_.pressed_time, limits_.idle_time);
            while (!load_.pressed() && wait_for(POLLIN, until) &&
                   ::recv(sock_, buffer_.data(), buffer_.size(), 0) > 0) {
            }
        }
        ::shutdown(sock_, SHUT_RDWR);
        ::close(sock_);
        sock_ = INVALID_SOCKET;
    }

private:
    // Waits until the socket has input, within the request's deadline (or the shorter
    // grace while connections wait for a worker); records a missed deadline.
    bool wait_for_input() const {
        clock::time_point until = deadline_;
        if (load_.pressed()) until = std::min(until, started_ + limits_.pressed_time);
        if (wait_for(POLLIN, until)) return true;
        if (failure_ == read_failure::none) failure_ = clock::now() >= until ? read_failure::deadline : read_failure::closed;
        return false;
    }

    // Polls in short slices until `events` or `until`, so that a server coming under
    // pressure, or stopping, is noticed by connections already waiting.
    bool wait_for(short events, clock::time_point until) const {
        constexpr auto slice = std::chrono::milliseconds(50);
        for (;;) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - clock::now());
            if (left.count() <= 0) return false;
            pollfd p{sock_, events, 0};
            const int ready = ::poll(&p, 1, static_cast<int>(std::min(left, slice).count()));
            if (ready > 0) return true;
            if (ready < 0 && errno != EINTR) return false;
            if (events == POLLIN && load_.pressed()) until = std::min(until, started_ + limits_.pressed_time);
        }
    }

    ssize_t fill() {
        if (!wait_for_input()) return -1;
        ssize_t got;
        do got = ::recv(sock_, buffer_.data(), buffer_.size(), 0);
        while (got < 0 && errno == EINTR);
        if (got < 0) failure_ = read_failure::closed;
        begin_ = 0;
        end_ = got > 0 ? static_cast<std::size_t>(got) : 0;
        return got;
    }

    void address(int (*name_of)(int, sockaddr*, socklen_t*), std::string& ip, int& port) const {
        sockaddr_storage a{};
        socklen_t length = sizeof a;
        char host[NI_MAXHOST] = "", service[NI_MAXSERV] = "0";
        if (name_of(sock_, reinterpret_cast<sockaddr*>(&a), &length) == 0)
            ::getnameinfo(reinterpret_cast<sockaddr*>(&a), length, host, sizeof host, service, sizeof service,
                          NI_NUMERICHOST | NI_NUMERICSERV);
        ip = host;
        port = std::atoi(service);
    }

    socket_t sock_;
    const connection_limits& limits_;
    const server_load& load_;
    std::array<char, 16 << 10> buffer_{};
    std::size_t begin_ = 0, end_ = 0;
    std::size_t phase_bytes_ = 0;
    bool in_body_ = false;
    bool linger_ = false;
    clock::time_point started_{}, deadline_{};
    mutable read_failure failure_ = read_failure::none;
};

// An httplib server whose connections are served by connection_stream.
class hardened_server final : public httplib::Server {
public:
    hardened_server(const connection_limits& limits, std::size_t workers) : limits_(limits) {
        new_task_queue = [this, workers] { return new worker_pool(workers, load_); };
        // The per-request deadline and the idle limit close connections, not a count.
        set_keep_alive_max_count(1 << 20);
        set_keep_alive_timeout(std::chrono::ceil<std::chrono::seconds>(limits.idle_time).count());
    }

    // Stops listening, and tells waiting connections not to wait any longer.
    void stop_serving() {
        load_.stopping = true;
        stop();
    }

    // The connection the calling worker thread serves. httplib's handlers get no handle
    // on their connection; a connection is served on one thread from its first request
    // to its last, so the thread knows it.
    static connection_stream& current() { return *current_; }

private:
    bool process_and_close_socket(socket_t sock) override {
        connection_stream stream(sock, limits_, load_);
        current_ = &stream;
        for (std::size_t served = 0; served < keep_alive_max_count_ && stream.next_request(); ++served) {
            bool client_closes = false;
            const bool last = served + 1 == keep_alive_max_count_ || load_.stopping;
            const bool replied =
                process_request(stream, last, client_closes, [&stream](httplib::Request&) { stream.headers_read(); });
            if (!replied || client_closes || last || stream.closing()) break;
        }
        current_ = nullptr;
        return true;
    }

    connection_limits limits_;
    server_load load_;
    static inline thread_local connection_stream* current_ = nullptr;
};

}  // namespace nnmark::cli::http
