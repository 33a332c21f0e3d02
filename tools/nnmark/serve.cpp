// nnmark serve: answer TensorFlow Serving's REST API with a model, over HTTP/1.1
// (cpp-httplib). What a request gets back is decided by serve/prediction_service.hpp;
// this file is the HTTP around it. With P = /v1/models/NAME[/versions/V|/labels/L]
// (serve/tf_serving_paths.hpp):
//
//   POST P:predict    {"instances": [...]} -> {"predictions": [...]},
//                     {"inputs": ...} -> {"outputs": ...}
//   POST P:classify   {"examples": [...]} -> {"result": [...]}
//   POST P:regress    400: a classifier has no regression signature
//   GET  P            the model's status
//   GET  P/metadata   its signatures
//   anything else     404 or 405 {"error": ...}, its body never read; so are another
//                     model or version (404), an unknown label (400) and :regress
//
// Limits: --max-body bytes per body, whatever its transfer encoding, enforced while it
// is read (413); --max-instances images per request (413); --read-timeout seconds for a
// request's headers and body (408, or the connection dropped); --timeout seconds to
// wait for a compute slot (503) and for each write. A body must be JSON (415 else).
// Every refusal closes its connection, since the rest of its input cannot be trusted.
// Concurrency: --connections worker threads serve connections (http_connection.hpp:
// slow and idle clients give their workers up while others wait for one); at most T
// requests (--threads, default: all cores) are parsed and computed at once, each on one
// core, since a batch-1 request is too small to split between cores.
//
// DAWN (--dawn-registry DIR; Szyller et al., ACM MM 2021): a keyed fraction --dawn-rate
// of (client, input) pairs is answered with a keyed wrong label and recorded in DIR
// (serve/dawn_answers.hpp, serve/dawn_registry.hpp), so `nnmark verify --dawn-registry`
// can show that a surrogate trained on this API's answers learned them. The client is
// the value of the header --dawn-client-header names when the request has it (behind a
// proxy, or for an API key), else the request's remote address. At start it prints the
// registry's commitment, SHA-256 of HMAC(secret, "nnmark dawn commitment v1"), to
// publish: it names the secret without revealing it.
//
// Evasion (--evade NAME; Hitaj & Mancini 2018): the server plays the thief, whose
// detectors (attacks/query_detectors.hpp, fitted at start on the attacker's data of
// --dataset to flag at most --false-positive-rate of it) or second opinion (trained at
// start) decide which queries get another answer (attacks/evading_service.hpp), exactly
// as `attack evade` simulates it, so `verify --url` can be tried against it.
#include "attacking.hpp"
#include "cli.hpp"
#include "training_options.hpp"
#include "http_connection.hpp"

#include "nnmark/core/parallel.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/serve/dawn_answers.hpp"
#include "nnmark/serve/dawn_registry.hpp"
#include "nnmark/serve/prediction_service.hpp"

#include <httplib.h>
#include <pthread.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <semaphore>
#include <thread>
#include <vector>

namespace nnmark::cli {

// A named namespace: the tool compiles as one translation unit with the other commands.
namespace serving {

struct serve_options {
    std::string model, arch, name = "default", host = "127.0.0.1";
    int port = 8500;
    std::size_t max_body = 4 << 20;
    index_t max_instances = 64;
    double timeout = 10;
    double read_timeout = 5;
    int connections = 128;
    std::string dawn_dir, dawn_client_header;
    double dawn_rate = 0.005;
    std::int64_t model_version = 1;
    std::vector<std::string> version_labels;
    std::string range = "auto";  // --input-range
    std::string evade;      // an evasion name, or empty
    attack_options evasion;  // its attacker's data, false-positive rate and second opinion
};

// At most `slots` requests compute at once: one per core keeps the cores busy without
// thrashing them, and bounds the memory of parsed bodies (serve/predict_request.hpp).
// Each slot has its own inference scratch, so memory follows the slots, not the many
// worker threads that take turns in them.
class compute_slots {
public:
    explicit compute_slots(int slots) : free_(slots), scratch_(static_cast<std::size_t>(slots)) {
        for (auto& s : scratch_) s = std::make_unique<service_buffers>();
    }

    // Runs `work(buffers)` in a slot and returns its result, or nothing after waiting `patience`.
    template <class Work>
    std::optional<service_reply> run(std::chrono::duration<double> patience, Work&& work) {
        if (!free_.try_acquire_for(patience)) return std::nullopt;
        std::unique_ptr<service_buffers> buffers = take_scratch();
        struct release {
            compute_slots& slots;
            std::unique_ptr<service_buffers>& buffers;
            ~release() {
                slots.give_back(std::move(buffers));
                slots.free_.release();
            }
        } guard{*this, buffers};
        return work(*buffers);
    }

    static constexpr int max_slots = 1024;

private:
    std::unique_ptr<service_buffers> take_scratch() {
        const std::lock_guard lock(mutex_);
        auto buffers = std::move(scratch_.back());
        scratch_.pop_back();
        return buffers;
    }
    void give_back(std::unique_ptr<service_buffers> buffers) {
        const std::lock_guard lock(mutex_);
        scratch_.push_back(std::move(buffers));
    }

    std::counting_semaphore<max_slots> free_;
    std::mutex mutex_;
    std::vector<std::unique_ptr<service_buffers>> scratch_;
};

// SIGINT and SIGTERM stop the server. A signal handler may not call Server::stop(), so
// the signals are blocked in every thread (httplib's workers inherit the mask) and one
// thread waits for them with sigwait. It keeps calling stop() until listening has
// ended, since a signal may come between binding the port and listening on it.
class stop_on_signals {
public:
    explicit stop_on_signals(http::hardened_server& server) {
        sigemptyset(&signals_);
        sigaddset(&signals_, SIGINT);
        sigaddset(&signals_, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
        waiter_ = std::thread([this, &server] {
            int signal = 0;
            sigwait(&signals_, &signal);
            while (!listening_ended_) {
                server.stop_serving();
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

// Bodies from this size on leave megabytes of freed JSON nodes (about 25 bytes per body
// byte) in glibc's arenas, one per thread that allocated them; they go back to the
// system at once, so resident memory after a burst of large requests is what it was before.
constexpr std::size_t large_body = 256 << 10;

void return_free_memory() {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

// glibc gives each thread that allocates an arena of its own, up to 8 per core, and
// each keeps what its thread freed: with --connections workers taking turns, resident
// memory would grow by tens of MB under abuse. Large allocations happen in the
// compute slots only, so an arena per slot loses nothing to contention.
void share_malloc_arenas(int slots) {
#if defined(__GLIBC__)
    mallopt(M_ARENA_MAX, std::max(slots, 2));
#else
    (void)slots;
#endif
}

void reply(httplib::Response& res, const service_reply& r) {
    res.status = r.status;
    res.set_content(r.body, "application/json");
}

// Every model URL; route_or_refuse has parsed it and refused what the service does not answer.
const std::string model_route = R"(/v1/models/.+)";

std::string seconds_str(double seconds) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", seconds);
    return text;
}

std::string body_limit_message(const serve_options& o) {
    return "the request body is larger than the limit of " + std::to_string(o.max_body) + " bytes (--max-body)";
}

// The message for a status httplib set by itself (no route, unreadable request, ...).
std::string describe_status(const httplib::Request& req, const httplib::Response& res, const serve_options& o) {
    switch (res.status) {
        case 404:
            return "no such resource: " + req.method + " " + req.path + "; this server answers POST /v1/models/" +
                   o.name + "[/versions/" + std::to_string(o.model_version) + "|/labels/L]:predict or :classify, " +
                   "and GET /v1/models/" + o.name + "[...] or its /metadata";
        case 408:
            return "the request was not received within the time limit of " + seconds_str(o.read_timeout) +
                   " s (--read-timeout)";
        case 413:
            return body_limit_message(o);
        case 414:
            return "the request target is longer than " + std::to_string(CPPHTTPLIB_REQUEST_URI_MAX_LENGTH) + " bytes";
        case 431:
            return "the request line and headers are larger than the limit of 65536 bytes, or a header line than " +
                   std::to_string(CPPHTTPLIB_HEADER_MAX_LENGTH);
        default:
            return "HTTP status " + std::to_string(res.status);
    }
}

// Every refusal closes its connection and says so; a request httplib could not read
// gets the status that names why: its deadline passed (408), its headers were too large (431).
void refuse(const httplib::Request& req, httplib::Response& res, const serve_options& o) {
    http::connection_stream& connection = http::hardened_server::current();
    connection.close_after_reply();
    res.set_header("Connection", "close");
    if (res.status == 400 && res.body.empty()) {
        if (connection.failure() == http::read_failure::deadline) res.status = 408;
        if (connection.failure() == http::read_failure::too_large) res.status = 431;
    }
    if (res.body.empty()) res.set_content(error_body(describe_status(req, res, o)), "application/json");
}

// Requests the service does not answer are refused before their body is read: httplib
// would otherwise read a chunked body of any size into memory to find no handler for it.
httplib::Server::HandlerResponse route_or_refuse(const prediction_service& service, const httplib::Request& req,
                                                 httplib::Response& res) {
    const std::optional<model_path> path = parse_model_path(req.path);
    if (!path) {
        res.status = 404;  // refuse() describes it
        return httplib::Server::HandlerResponse::Handled;
    }
    const std::optional<service_reply> refusal = service.refuse(*path, req.method);
    if (!refusal) return httplib::Server::HandlerResponse::Unhandled;
    if (refusal->status == 405) res.set_header("Allow", std::string(allowed_methods(path->verb)));
    reply(res, *refusal);
    return httplib::Server::HandlerResponse::Handled;
}

// The path of a request route_or_refuse let through, which is a model URL.
model_path path_of(const httplib::Request& req) { return parse_model_path(req.path).value(); }

std::string lowercase_media_type(const std::string& content_type) {
    std::string type = content_type.substr(0, content_type.find(';'));
    type.erase(type.find_last_not_of(" \t") + 1);
    for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return type;
}

// A predict request refused from its headers alone, before any of its body is read.
std::optional<service_reply> refuse_from_headers(const httplib::Request& req, const serve_options& o) {
    // No Content-Type is taken for JSON; another type is not what the client meant to send.
    const std::string type = lowercase_media_type(req.get_header_value("Content-Type"));
    if (!type.empty() && type != "application/json")
        return service_reply{415, error_body("expected Content-Type application/json, found \"" + type +
                                             "\" (curl: -H 'Content-Type: application/json')")};
    // A compressed body would be inflated past --max-body's meaning; clients send JSON as is.
    const std::string encoding = lowercase_media_type(req.get_header_value("Content-Encoding"));
    if (!encoding.empty() && encoding != "identity")
        return service_reply{415, error_body("expected no Content-Encoding, found \"" + encoding +
                                             "\"; send the JSON body uncompressed")};
    const bool chunked = req.has_header("Transfer-Encoding");
    if (chunked && lowercase_media_type(req.get_header_value("Transfer-Encoding")) != "chunked")
        return service_reply{400, error_body("expected Transfer-Encoding chunked or none, found \"" +
                                             req.get_header_value("Transfer-Encoding") + "\"")};
    if (chunked) return std::nullopt;
    // HTTP/1.1 gives a request without either header no body; httplib would read until the client closes.
    if (!req.has_header("Content-Length"))
        return service_reply{411, error_body("a predict request needs a Content-Length or a chunked body")};
    const std::string length = req.get_header_value("Content-Length");
    if (length.empty() || length.size() > 18 || length.find_first_not_of("0123456789") != std::string::npos)
        return service_reply{400, error_body("expected Content-Length to be a number of bytes, found \"" +
                                             length.substr(0, 40) + "\"")};
    if (std::stoull(length) > o.max_body) return service_reply{413, error_body(body_limit_message(o))};
    return std::nullopt;
}

// Reads the body into `body`, refusing it as soon as it passes --max-body, whatever its
// transfer encoding: memory never holds more of it than the limit.
std::optional<service_reply> read_body(const httplib::ContentReader& read, const serve_options& o, std::string& body) {
    bool over_limit = false;
    const bool complete = read([&](const char* data, std::size_t size) {
        over_limit = size > o.max_body - body.size();
        if (!over_limit) body.append(data, size);
        return !over_limit;
    });
    const http::read_failure failure = http::hardened_server::current().failure();
    if (over_limit || failure == http::read_failure::too_large)
        return service_reply{413, error_body(body_limit_message(o))};
    if (complete) return std::nullopt;
    if (failure == http::read_failure::deadline)
        return service_reply{408, error_body("the request body was not received within the time limit of " +
                                             seconds_str(o.read_timeout) + " s (--read-timeout)")};
    return service_reply{400, error_body("the request body ended early, or its chunked encoding is malformed")};
}

// Who asks, for DAWN's decision: the header the operator named when the request has
// it, else the peer's address (a client leaving the header out is still somebody).
std::string client_of(const httplib::Request& req, const serve_options& o) {
    if (!o.dawn_client_header.empty() && req.has_header(o.dawn_client_header))
        return req.get_header_value(o.dawn_client_header);
    return req.remote_addr;
}

// What a predict or classify request gets; `received` is set to the bytes of body read.
service_reply post_reply(const httplib::Request& req, const httplib::ContentReader& read,
                         const prediction_service& service, compute_slots& slots, const serve_options& o,
                         std::size_t& received) {
    if (auto refusal = refuse_from_headers(req, o)) return *refusal;
    std::string body;
    const auto refusal = read_body(read, o, body);
    received = body.size();
    if (refusal) return *refusal;
    const std::string client = client_of(req, o);
    const model_path path = path_of(req);
    const auto answer = slots.run(std::chrono::duration<double>(o.timeout), [&](service_buffers& buffers) {
        return service.post(path, body, buffers, client);
    });
    if (answer) return *answer;
    return {503, error_body("busy: no compute slot became free within the time limit of " + seconds_str(o.timeout) +
                            " s (--timeout)")};
}

// Routes and limits of the server answering with `service`.
void configure(httplib::Server& server, const prediction_service& service, compute_slots& slots,
               const serve_options& o) {
    // Content-Length beyond this is refused (413) before reading; httplib would read and discard it.
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
    server.set_pre_routing_handler(
        [&service](const httplib::Request& req, httplib::Response& res) { return route_or_refuse(service, req, res); });
    server.Post(model_route, [&service, &slots, &o](const httplib::Request& req, httplib::Response& res,
                                                    const httplib::ContentReader& read) {
        std::size_t received = 0;
        reply(res, post_reply(req, read, service, slots, o, received));
        if (received >= large_body) return_free_memory();
    });
    server.Get(model_route, [&service](const httplib::Request& req, httplib::Response& res) {
        reply(res, service.get(path_of(req)));
    });
    server.set_error_handler([&o](const httplib::Request& req, httplib::Response& res) { refuse(req, res, o); });
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

http::connection_limits limits_of(const serve_options& o) {
    const auto seconds = [](double s) {
        return std::chrono::duration_cast<http::clock::duration>(std::chrono::duration<double>(s));
    };
    http::connection_limits limits;
    limits.request_time = seconds(o.read_timeout);
    limits.idle_time = seconds(o.read_timeout);
    limits.write_time = seconds(o.timeout);
    // A client on loopback or a LAN sends a request in milliseconds; a second is ample.
    limits.pressed_time = std::min(limits.request_time, seconds(1));
    // Chunks of a few bytes each double a body as sent; such framing is refused beyond that.
    limits.body_bytes = 2 * o.max_body + (64 << 10);
    return limits;
}

// The registry of --dawn-registry and its decision rule, when asked for.
struct dawn_parts {
    std::unique_ptr<dawn_registry> registry;
    std::unique_ptr<dawn_answers> answers;

    std::optional<dawn_layer> layer() const {
        if (!registry) return std::nullopt;
        return dawn_layer{*answers, *registry};
    }
};

dawn_parts open_dawn(const serve_options& o) {
    dawn_parts parts;
    if (o.dawn_dir.empty()) return parts;
    parts.registry = std::make_unique<dawn_registry>(o.dawn_dir);
    parts.answers = std::make_unique<dawn_answers>(parts.registry->secret(), o.dawn_rate);
    std::printf("nnmark serve: DAWN registry %s: %zu altered answers recorded%s; rate %g; commitment %s\n",
                o.dawn_dir.c_str(), parts.registry->size(),
                parts.registry->torn_bytes_at_start() ? " (a torn last record was cut off)" : "", o.dawn_rate,
                parts.answers->commitment().c_str());
    return parts;
}

// The thief's evasion of --evade, fitted on the attacker's data, when asked for.
std::unique_ptr<evasion_policy> make_evasion(const serve_options& o, const sequential<float>& model) {
    if (o.evade.empty()) return nullptr;
    const attack_options& a = o.evasion;
    threshold_at_rate({0.0}, a.false_positive_rate);  // the rate is checked before any slow work
    const dataset attacker = load_attack_data(a, a.second_opinion.seed).attacker;
    if (!(attacker.item_shape() == model.input_item()))
        throw shape_error("serve --evade: the model takes images " + model.input_item().str() + " but the attacker's " +
                          attacker.name + " (--dataset) has images " + attacker.item_shape().str());
    progress_line progress(stderr, 5.0, false);
    auto policy = std::make_unique<evasion_policy>(
        make_evasion_policy(o.evade, model, attacker, a.false_positive_rate, a.second_opinion, progress));
    std::string how = "a second opinion trained on " + attacker.name;
    if (!policy->detectors().empty()) {
        how.clear();
        for (const fitted_detector& d : policy->detectors())
            how += (how.empty() ? "" : ", ") + to_string(d.kind) + " above " + std::to_string(d.threshold);
        how += " (fitted on " + attacker.name + " to flag at most " + std::to_string(a.false_positive_rate) + " of it)";
    }
    std::printf("nnmark serve: evading verification (--evade %s): %s\n", o.evade.c_str(), how.c_str());
    return policy;
}

input_range input_range_named(const std::string& name) {
    if (name == "unit") return input_range::unit;
    if (name == "byte") return input_range::byte;
    return input_range::automatic;
}

int serve(const serve_options& o) {
    const sequential<float> model = read_model(o.model, o.arch);
    const dawn_parts dawn = open_dawn(o);
    const std::unique_ptr<evasion_policy> evasion = make_evasion(o, model);
    const prediction_service service(model, o.name, {o.max_instances, input_range_named(o.range)}, dawn.layer(),
                                     evasion.get(),
                                     {o.model_version, o.version_labels});
    // Parallelism comes from serving requests side by side, each computed on one core.
    compute_slots slots(thread_count());
    share_malloc_arenas(thread_count());
    set_threads(1);

    http::hardened_server server(limits_of(o), static_cast<std::size_t>(o.connections));
    configure(server, service, slots, o);
    const stop_on_signals stopper(server);
    const int port =
        o.port == 0 ? server.bind_to_any_port(o.host) : (server.bind_to_port(o.host, o.port) ? o.port : -1);
    if (port < 0)
        throw io_error("serve: cannot listen on " + o.host + ":" + std::to_string(o.port) +
                       " (in use, or not an address of this machine)");
    std::printf(
        "nnmark serve: listening on http://%s:%d (POST /v1/models/%s:predict or :classify, GET /v1/models/%s and "
        "/metadata; version %lld); model %s, %s images -> %lld classes; Ctrl-C stops\n",
        o.host.c_str(), port, o.name.c_str(), o.name.c_str(), static_cast<long long>(o.model_version),
        o.model.c_str(), model.input_item().str().c_str(), static_cast<long long>(model.output_item().count()));
    std::fflush(stdout);
    if (!server.listen_after_bind())
        throw io_error("serve: listening on " + o.host + ":" + std::to_string(port) + " failed");
    std::fprintf(stderr, "nnmark serve: stopped\n");
    return success;
}

}  // namespace serving

namespace serving {

// A non-empty piece of a model URL (serve/tf_serving_paths.hpp): no '/' or ':'.
CLI::Validator url_segment(const std::string& what, const std::string& name) {
    return CLI::Validator(
        [what](std::string& s) {
            return s.find_first_of("/:") == std::string::npos && !s.empty() ? "" : what + " has no '/' or ':'";
        },
        name);
}

// --evade and what the thief's evasion is fitted or trained on; none without --evade.
void add_evasion_flags(CLI::App& app, serve_options& o, CLI::Option* dawn) {
    CLI::Option* evade =
        app.add_option("--evade", o.evade,
                       "Play the thief: answer the queries this detector flags with another class (stamp, "
                       "noise-residual, ood, union, or ensemble: a second opinion), as attack evade does")
            ->check(CLI::IsMember(evasion_names()))
            ->excludes(dawn);
    o.evasion.data.add_to(app, false);
    app.add_option("--false-positive-rate", o.evasion.false_positive_rate,
                   "Evasion: share of the attacker's images each detector flags at most (its threshold)")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    add_training_flags(app, o.evasion, o.evasion.second_opinion);
    for (const char* name : {"--dataset", "--data", "--false-positive-rate", "--attacker-data", "--train-fraction",
                             "--epochs", "--lr", "--batch", "--seed"})
        app.get_option(name)->needs(evade);
}

}  // namespace serving

command add_serve_command(CLI::App& parent) {
    using namespace serving;
    auto o = std::make_shared<serve_options>();
    CLI::App* app =
        parent.add_subcommand("serve", "Serve a model over HTTP with TensorFlow Serving's REST API");
    app->add_option("--model", o->model, "Model file (safetensors)")->required();
    add_model_arch_option(*app, o->arch);
    app->add_option("--name", o->name, "Model name in the URLs /v1/models/NAME")
        ->check(url_segment("a model name", "NAME"))
        ->capture_default_str();
    app->add_option("--model-version", o->model_version,
                    "Version served, in the URLs /v1/models/NAME/versions/V and in the status")
        ->check(CLI::Range(std::int64_t(1), std::numeric_limits<std::int64_t>::max()))
        ->capture_default_str();
    app->add_option("--version-label", o->version_labels,
                    "A label for the served version, in the URLs /v1/models/NAME/labels/L (repeatable)")
        ->check(url_segment("a label", "LABEL"));
    app->add_option("--input-range", o->range,
                    "How pixel numbers are read: auto (per image: 0-255 when all are integers or any is above 1, "
                    "else 0-1), unit (0-1) or byte (0-255)")
        ->check(CLI::IsMember({"auto", "unit", "byte"}))
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
    app->add_option("--timeout", o->timeout, "Seconds to wait for a compute slot (503 after), and for each write")
        ->check(CLI::Range(0.01, 3600.0))
        ->capture_default_str();
    app->add_option("--read-timeout", o->read_timeout,
                    "Seconds to receive a request's headers and body (408 after), and to wait for the next request "
                    "on a connection")
        ->check(CLI::Range(0.05, 3600.0))
        ->capture_default_str();
    app->add_option("--connections", o->connections, "Connections served at once (HTTP worker threads)")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    CLI::Option* dawn = app->add_option("--dawn-registry", o->dawn_dir,
                    "DAWN: answer a keyed fraction of queries with keyed wrong labels and record them in this "
                    "directory (created with its secret on the first start), for verify --dawn-registry");
    app->add_option("--dawn-rate", o->dawn_rate, "DAWN: fraction of (client, input) pairs answered wrongly")
        ->check(CLI::Range(1e-9, 0.5))
        ->capture_default_str()
        ->needs(dawn);
    app->add_option("--dawn-client-header", o->dawn_client_header,
                    "DAWN: the request header naming the client (default: the remote address)")
        ->needs(dawn);
    add_evasion_flags(*app, *o, dawn);
    return {app, [o] { return serve(*o); }};
}

}  // namespace nnmark::cli
