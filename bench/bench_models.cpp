// bench_models: steady-state images/s of the paper's networks in nnmark, one case per
// run, for the side-by-side comparison with PyTorch (bench/torch_bench.py measures the
// same cases the same way; scripts/bench.sh runs both and prints the table).
//
// Usage:
//   bench_models --net paper-mnist|paper-cifar10 --mode train|infer --batch N --threads T
//                [--precision fp32|bf16|int8] [--seconds S] [--json]
//   bench_models --mnist-rss DIR [--steps K] [--threads T] [--json]
//
// Speed: inputs are random in [0, 1), labels random. Warm-up iterations run first
// (buffers grow to their steady size, OpenMP starts its threads, caches fill); then
// the timed part is cut into `timing_windows` windows of S / timing_windows seconds,
// each at least one iteration. The result is the best window's images/s, because on a
// shared machine the slow windows measure the neighbours; the mean over all windows is
// printed too. torch_bench.py uses the same rule.
//   train: what trainer::train_step does per step, on a ready float batch: the
//          forward pass (data_parallel, the batch split among the threads), softmax
//          cross-entropy and its gradient, the backward pass, one step of nnmark's
//          default optimizer (SGD, Nesterov momentum 0.9, weight decay 5e-4).
//   infer: sequential::infer (evaluation mode: dropout is the identity); with
//          --precision bf16 or int8, of the model at that precision
//          (model/low_precision.hpp; int8 calibrated on 256 other random images).
//
// FLOPs are counted from the model, not written down: the multiply-adds of the conv2d
// and dense layers times 2 for the forward pass; a training step counts 3 forward
// passes (backward computes two products the size of the forward one: the input
// gradient and the weight gradient). paper-mnist: ~60 MFLOP per training image,
// paper-cifar10: ~340 MFLOP.
//
// Memory: --mnist-rss loads the FULL MNIST training set from DIR, then trains K steps
// of batch 128 with nnmark's trainer (one epoch over the first K x 128 images, the whole
// set staying loaded) and reports the peak resident set size (getrusage ru_maxrss),
// also as it was right after loading.
#include "nnmark/core/json.hpp"
#include "nnmark/core/parallel.hpp"
#include "nnmark/data/load.hpp"
#include "nnmark/layers/softmax_cross_entropy.hpp"
#include "nnmark/model/low_precision.hpp"
#include "nnmark/model/paper_models.hpp"
#include "nnmark/train/data_parallel.hpp"
#include "nnmark/train/progress.hpp"
#include "nnmark/train/recipe.hpp"
#include "nnmark/train/trainer.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <map>
#include <numeric>
#include <string>
#include <vector>

namespace {

using namespace nnmark;
using clock_type = std::chrono::steady_clock;

constexpr int timing_windows = 3;

const char* const usage =
    "usage: bench_models --net paper-mnist|paper-cifar10 --mode train|infer --batch N --threads T\n"
    "                    [--precision fp32|bf16|int8] [--seconds S] [--json]\n"
    "       bench_models --mnist-rss DIR [--steps K] [--threads T] [--json]\n";

// --name value pairs and bare --flags; anything else is an argument_error.
struct options {
    std::map<std::string, std::string> values;
    bool json = false;
    bool help = false;

    static options parse(int argc, char** argv) {
        options o;
        for (int i = 1; i < argc; ++i) {
            const std::string arg = argv[i];
            if (arg == "--json") o.json = true;
            else if (arg == "--help" || arg == "-h") o.help = true;
            else if (arg.rfind("--", 0) == 0 && i + 1 < argc) o.values[arg.substr(2)] = argv[++i];
            else throw argument_error("bench_models: unexpected argument '" + arg + "'\n" + usage);
        }
        return o;
    }

    bool has(const std::string& name) const { return values.contains(name); }

    std::string text(const std::string& name, const std::string& fallback) const {
        const auto it = values.find(name);
        return it == values.end() ? fallback : it->second;
    }

    double number(const std::string& name, double fallback) const {
        const std::string t = text(name, "");
        if (t.empty()) return fallback;
        char* end = nullptr;
        const double v = std::strtod(t.c_str(), &end);
        if (*end != '\0' || !(v > 0))
            throw argument_error("bench_models: --" + name + " expects a positive number, got '" + t + "'");
        return v;
    }

    int count(const std::string& name, int fallback) const {
        const double v = number(name, fallback);
        if (v != static_cast<int>(v))
            throw argument_error("bench_models: --" + name + " expects a whole number, got '" + text(name, "") + "'");
        return static_cast<int>(v);
    }
};

// Forward-pass FLOPs of one image: 2 x the multiply-adds of the conv2d layers (every
// weight meets every output position once) and of the dense layers (every weight
// once). The other layers do O(size) work and are not counted, as is customary. The
// count is the direct definition's: Winograd's 3x3 convolutions (kernels/winograd.hpp)
// do fewer multiply-adds, so GFLOP/s here are effective figures.
double forward_flops_per_image(const sequential<float>& net) {
    tensor<float> x(net.input_item().prepend(1)), y;
    workspace<float> scratch;
    double multiply_adds = 0;
    for (int i = 0; i < net.size(); ++i) {
        const layer<float>& l = net.at(i);
        l.infer(x, y, scratch);  // only for the output shape; the parameters are zero
        const bool conv = l.kind() == "conv2d";
        if (conv || l.kind() == "dense") {
            const double weights = static_cast<double>(l.param_specs().at(0).shape.count());
            const double positions = conv ? static_cast<double>(y.shape().item_count() / y.shape()[1]) : 1.0;
            multiply_adds += weights * positions;
        }
        std::swap(x, y);
    }
    return 2 * multiply_adds;
}

struct timing {
    double best_images_per_second = 0;
    double mean_images_per_second = 0;
    long long iterations = 0;
};

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

// Warm up, then time `iteration` (one batch of `batch` images) over `seconds`.
timing measure(const std::function<void()>& iteration, index_t batch, double seconds) {
    const auto warm_start = clock_type::now();
    for (int i = 0; i < 2 || seconds_since(warm_start) < 0.15 * seconds; ++i) iteration();

    timing t;
    double total_seconds = 0;
    for (int w = 0; w < timing_windows; ++w) {
        long long done = 0;
        const auto start = clock_type::now();
        do {
            iteration();
            ++done;
        } while (seconds_since(start) < seconds / timing_windows);
        const double elapsed = seconds_since(start);
        t.best_images_per_second = std::max(t.best_images_per_second, static_cast<double>(done * batch) / elapsed);
        t.iterations += done;
        total_seconds += elapsed;
    }
    t.mean_images_per_second = static_cast<double>(t.iterations * batch) / total_seconds;
    return t;
}

tensor<float> random_images(const shape& item, index_t batch, rng& random) {
    tensor<float> x(item.prepend(batch));
    for (index_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(random.uniform());
    return x;
}

std::vector<int> random_labels(index_t batch, int classes, rng& random) {
    std::vector<int> labels(static_cast<std::size_t>(batch));
    for (int& label : labels) label = static_cast<int>(random.next_u64() % static_cast<std::uint64_t>(classes));
    return labels;
}

json speed_case(const options& o) {
    const std::string net_name = o.text("net", "");
    const std::string mode = o.text("mode", "");
    const index_t batch = o.count("batch", 0);
    const int threads = o.count("threads", 0);
    const double seconds = o.number("seconds", 3.0);
    if (net_name.empty() || batch == 0 || threads == 0)
        throw argument_error(std::string("bench_models: --net, --batch and --threads are required\n") + usage);
    if (mode != "train" && mode != "infer")
        throw argument_error("bench_models: --mode expects train or infer, got '" + mode + "'");
    const precision arithmetic = parse_precision(o.text("precision", "fp32"));
    if (mode == "train" && arithmetic != precision::fp32)
        throw argument_error("bench_models: --precision " + precision_name(arithmetic) + " is for --mode infer");
    set_threads(threads);

    sequential<float> net = build_architecture<float>(net_name);
    net.initialize(1);
    const double forward_flops = forward_flops_per_image(net);
    const double flops_per_image = mode == "train" ? 3 * forward_flops : forward_flops;
    const int classes = static_cast<int>(net.output_item().count());

    rng random(7);
    const tensor<float> images = random_images(net.input_item(), batch, random);
    const std::vector<int> labels = random_labels(batch, classes, random);

    timing t;
    if (mode == "train") {
        const training_recipe recipe;
        auto optimizer = make_optimizer<float>(recipe);
        data_parallel<float> passes(net);
        tensor<float> grad_logits;
        rng masks(recipe.seed);
        t = measure(
            [&] {
                const tensor<float>& logits = passes.forward(images, masks);
                softmax_cross_entropy(logits, labels, &grad_logits);
                passes.backward(grad_logits);
                optimizer->step(net);
            },
            batch, seconds);
    } else {
        const sequential<float> model =
            at_precision(net, arithmetic, random_images(net.input_item(), 256, random));
        inference_buffers<float> buffers;
        tensor<float> logits;
        t = measure([&] { model.infer(images, logits, buffers); }, batch, seconds);
    }

    json out = json::object();
    out["framework"] = "nnmark";
    out["net"] = net_name;
    out["mode"] = mode;
    out["precision"] = precision_name(arithmetic);
    out["batch"] = batch;
    out["threads"] = threads;
    out["images_per_second"] = t.best_images_per_second;
    out["mean_images_per_second"] = t.mean_images_per_second;
    out["iterations"] = t.iterations;
    out["flops_per_image"] = flops_per_image;
    out["gflops"] = t.best_images_per_second * flops_per_image / 1e9;
    return out;
}

double peak_resident_megabytes() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports kilobytes
}

json mnist_memory_case(const options& o) {
    const int steps = o.count("steps", 20);
    set_threads(o.count("threads", 1));
    const dataset full = load_dataset("mnist", o.text("mnist-rss", ""), true);
    const double loading_peak = peak_resident_megabytes();

    training_recipe recipe;
    recipe.epochs = 1;
    const index_t images = std::min<index_t>(full.size(), static_cast<index_t>(steps) * recipe.batch);
    std::vector<index_t> first(static_cast<std::size_t>(images));
    std::iota(first.begin(), first.end(), index_t(0));
    const dataset part = full.subset(first);

    sequential<float> net = build_architecture<float>("paper-mnist");
    net.initialize(recipe.seed);
    trainer<float> train(net, recipe);
    progress_line quiet(stderr, 5.0, true);
    const std::vector<epoch_summary> summary = train.fit(part, nullptr, quiet);

    json out = json::object();
    out["framework"] = "nnmark";
    out["net"] = "paper-mnist";
    out["dataset_images"] = full.size();
    out["dataset_megabytes"] = static_cast<double>(full.images.size()) / (1024.0 * 1024.0);
    out["steps"] = (images + recipe.batch - 1) / recipe.batch;
    out["batch"] = recipe.batch;
    out["threads"] = thread_count();
    out["images_per_second"] = summary.at(0).images_per_second;
    out["loading_peak_rss_mb"] = loading_peak;
    out["peak_rss_mb"] = peak_resident_megabytes();
    return out;
}

void print(const json& result, bool as_json) {
    if (as_json) {
        std::printf("%s\n", dump_json(result).c_str());
        return;
    }
    for (const auto& [key, value] : result.items()) std::printf("%-24s %s\n", key.c_str(), dump_json(value).c_str());
}

}  // namespace

int main(int argc, char** argv) try {
    const options o = options::parse(argc, argv);
    if (o.help || argc == 1) {
        std::fputs(usage, o.help ? stdout : stderr);
        return o.help ? 0 : 2;
    }
    print(o.has("mnist-rss") ? mnist_memory_case(o) : speed_case(o), o.json);
    return 0;
} catch (const argument_error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
} catch (const std::exception& e) {
    std::fprintf(stderr, "bench_models: %s\n", e.what());
    return 1;
}
