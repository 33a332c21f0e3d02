// nnmark serve: answer TensorFlow Serving REST predict calls with a model, over
// HTTP/1.1 (cpp-httplib). What a request gets back is decided by
// serve/prediction_service.hpp; this file is the HTTP around it:
//
//   POST /v1/models/NAME:predict   {"instances": [...]} -> {"predictions": [...]}
//   GET  /v1/models/NAME           the model's status
//   anything else                  404 {"error": ...}
//
// Limits: --max-body bytes per body (413), --max-instances images per request (413),
// --timeout seconds to receive a request and to wait for a compute slot (503 after).
// Concurrency: cpp-httplib gives each connection a thread of a pool of --connections;
// at most T requests (--threads, default: all cores) are parsed and computed at once,
// each on one core, since a batch-1 request is too small to split between cores.
#include "cli.hpp"

#include "nnmark/core/parallel.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/serve/prediction_service.hpp"

#include <httplib.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <semaphore>
#include <thread>

namespace nnmark::cli {

// A named namespace: the tool compiles as one translation unit with the other commands.
namespace serving {

struct serve_options {
    std::string model, name = "default", host = "127.0.0.1";
    int port = 8500;
    std::size_t max_body = 4 << 20;
    index_t max_instances = 64;
    double timeout = 10;
    int connections = 32;
};

// At most `slots` requests compute at once: one per core keeps the cores busy without
// thrashing them, and bounds the memory of parsed bodies (serve/predict_request.hpp).
class compute_slots {
public:
    explicit compute_slots(int slots) : free_(slots) {}

    // Runs `work` in a slot and returns its result, or nothing after waiting `patience`.
    template <class Work>
    std::optional<service_reply> run(std::chrono::duration<double> patience, Work&& work) {
        if (!free_.try_acquire_for(patience)) return std::nullopt;
        struct release {
            std::counting_semaphore<max_slots>& s;
            ~release() { s.release(); }
        } guard{free_};
        return work();
    }

    static constexpr int max_slots = 1024;

private:
    std::counting_semaphore<max_slots> free_;
};

// SIGINT and SIGTERM stop the server. A signal handler may not call Server::stop(), so
// the signals are blocked in every thread (httplib's workers inherit the mask) and one
// thread waits for them with sigwait. It keeps calling stop() until listening has
// ended, since a signal may come between binding the port and listening on it.
class stop_on_signals {
public:
    explicit stop_on_signals(httplib::Server& server) {
        sigemptyset(&signals_);
        sigaddset(&signals_, SIGINT);
        sigaddset(&signals_, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
        waiter_ = std::thread([this, &server] {
            int signal = 0;
            sigwait(&signals_, &signal);
            while (!listening_ended_) {
                server.stop();
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
        });
    }
    ~stop_on_signals() {
        listening_ended_ = true;
        pthread_kill(waiter_.native_handle(), SIGTERM);  // wakes a waiter still in sigwait
        waiter_.join();
    }
    stop_on_signals(const stop_on_signals&) = delete;
    stop_on_signals& operator=(const stop_on_signals&) = delete;

private:
    sigset_t signals_{};
    std::atomic<bool> listening_ended_{false};
    std::thread waiter_;
};

// Each of httplib's worker threads keeps its own inference scratch across requests.
service_buffers& this_thread_buffers() {
    thread_local service_buffers buffers;
    return buffers;
}

void reply(httplib::Response& res, const service_reply& r) {
    res.status = r.status;
    res.set_content(r.body, "application/json");
}

// The message for a status httplib set by itself (no route, body too large, ...).
std::string describe_status(const httplib::Request& req, int status, const serve_options& o) {
    switch (status) {
        case 404:
            return "no such resource: " + req.method + " " + req.path + "; this server answers POST /v1/models/" +
                   o.name + ":predict and GET /v1/models/" + o.name;
        case 413:
            return "the request body is larger than the limit of " + std::to_string(o.max_body) + " bytes (--max-body)";
        default:
            return "HTTP status " + std::to_string(status);
    }
}

service_reply unknown_model(const prediction_service& service, const std::string& name) {
    return {404, error_body("no model named \"" + name + "\"; this server serves \"" + service.name() + "\"")};
}

// Routes and limits of the server answering with `service`.
void configure(httplib::Server& server, const prediction_service& service, compute_slots& slots,
               const serve_options& o) {
    server.new_task_queue = [n = o.connections] { return new httplib::ThreadPool(static_cast<std::size_t>(n)); };
    server.set_payload_max_length(o.max_body);
    // httplib writes headers and body separately; with Nagle's algorithm the body would
    // wait for the client's delayed ACK of the headers, 40 ms on Linux.
    server.set_tcp_nodelay(true);
    // SO_REUSEADDR only: httplib's default SO_REUSEPORT would let a second server bind the
    // same port and silently take half of the connections.
    server.set_socket_options([](socket_t sock) {
        const int yes = 1;
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    const auto timeout = std::chrono::duration<double>(o.timeout);
    server.set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
    server.set_write_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
    const auto predict = [&service, &slots, &o, timeout](const httplib::Request& req, httplib::Response& res) {
        if (req.matches[1] != service.name()) return reply(res, unknown_model(service, req.matches[1]));
        const auto answer = slots.run(timeout, [&] { return service.predict(req.body, this_thread_buffers()); });
        if (answer) return reply(res, *answer);
        reply(res, {503, error_body("busy: no compute slot became free within the time limit of " +
                                    std::to_string(o.timeout) + " s (--timeout)")});
    };
    server.Post(R"(/v1/models/([^/:]+):predict)", predict);
    server.Get(R"(/v1/models/([^/:]+))", [&service](const httplib::Request& req, httplib::Response& res) {
        reply(res, req.matches[1] == service.name() ? service_reply{200, service.status_body()}
                                                    : unknown_model(service, req.matches[1]));
    });
    server.set_error_handler([&o](const httplib::Request& req, httplib::Response& res) {
        if (res.body.empty()) res.set_content(error_body(describe_status(req, res.status, o)), "application/json");
    });
    server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr failure) {
        std::string what = "internal error";
        try {
            std::rethrow_exception(failure);
        } catch (const std::exception& e) {
            what += std::string(": ") + e.what();
        } catch (...) {
        }
        reply(res, {500, error_body(what)});
    });
}

int serve(const serve_options& o) {
    const sequential<float> model = load_model<float>(o.model);
    const prediction_service service(model, o.name, {o.max_instances});
    // Parallelism comes from serving requests side by side, each computed on one core.
    compute_slots slots(thread_count());
    set_threads(1);

    httplib::Server server;
    configure(server, service, slots, o);
    const stop_on_signals stopper(server);
    const int port =
        o.port == 0 ? server.bind_to_any_port(o.host) : (server.bind_to_port(o.host, o.port) ? o.port : -1);
    if (port < 0)
        throw io_error("serve: cannot listen on " + o.host + ":" + std::to_string(o.port) +
                       " (in use, or not an address of this machine)");
    std::printf(
        "nnmark serve: listening on http://%s:%d (POST /v1/models/%s:predict, GET /v1/models/%s); model %s, "
        "%s images -> %lld classes; Ctrl-C stops\n",
        o.host.c_str(), port, o.name.c_str(), o.name.c_str(), o.model.c_str(), model.input_item().str().c_str(),
        static_cast<long long>(model.output_item().count()));
    std::fflush(stdout);
    if (!server.listen_after_bind())
        throw io_error("serve: listening on " + o.host + ":" + std::to_string(port) + " failed");
    std::fprintf(stderr, "nnmark serve: stopped\n");
    return success;
}

}  // namespace serving

command add_serve_command(CLI::App& parent) {
    using namespace serving;
    auto o = std::make_shared<serve_options>();
    CLI::App* app =
        parent.add_subcommand("serve", "Serve a model over HTTP with TensorFlow Serving's REST predict API");
    app->add_option("--model", o->model, "Model file (safetensors)")->required();
    app->add_option("--name", o->name, "Model name in the URLs /v1/models/NAME")
        ->check(CLI::Validator(
            [](std::string& s) {
                return s.find_first_of("/:") == std::string::npos && !s.empty() ? "" : "a model name has no '/' or ':'";
            },
            "NAME"))
        ->capture_default_str();
    app->add_option("--host", o->host, "Address to listen on (127.0.0.1: this machine only)")->capture_default_str();
    app->add_option("--port", o->port, "TCP port; 0 picks a free one (printed)")
        ->check(CLI::Range(0, 65535))
        ->capture_default_str();
    app->add_option("--max-body", o->max_body, "Largest request body, in bytes (413 beyond)")
        ->check(CLI::Range(std::size_t(1024), std::size_t(1) << 30))
        ->capture_default_str();
    app->add_option("--max-instances", o->max_instances, "Most images per request (413 beyond)")
        ->check(CLI::Range(index_t(1), index_t(1) << 20))
        ->capture_default_str();
    app->add_option("--timeout", o->timeout, "Seconds to receive a request, and to wait for a compute slot (503 after)")
        ->check(CLI::Range(0.01, 3600.0))
        ->capture_default_str();
    app->add_option("--connections", o->connections, "Connections served at once (HTTP worker threads)")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    return {app, [o] { return serve(*o); }};
}

}  // namespace nnmark::cli
