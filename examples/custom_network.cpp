// Tutorial: a network of your own, with a layer of your own, trained, saved and loaded.
//
//   datasets/fetch.sh mnist                                    # the four IDX files, SHA-256 verified
//   build/example_custom_network [DATA_DIR] [EPOCHS] [OUT]     # defaults: datasets/mnist 5 custom_network.safetensors
//
// The paper's networks come ready-made (build_architecture("paper-mnist")); here we
// write one in C++ instead: a small ResNet, whose residual blocks add their input to
// their output, with a PReLU layer that the library does not have, written below.
// The test suite runs this program on small generated MNIST files.
#include "nnmark/nnmark.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

// 1. A layer of our own: PReLU (He et al. 2015), a ReLU whose slope for negative
//    inputs is learned, one slope a[c] per channel:
//        y = x          where x > 0
//        y = a[c] * x   elsewhere
//    It is PyTorch's nn.PReLU(channels), whose one parameter is also called "weight".
//    A layer implements nnmark::layer<T> (nnmark/layers/layer.hpp, the contract):
//    its name and config, so that a model file can record it; the shapes; its
//    parameters, which live in the model's one buffer; forward and backward.
template <class T>
class prelu final : public nnmark::layer<T> {
public:
    explicit prelu(double initial_slope) : initial_slope_(initial_slope) {}

    // What the architecture JSON records: {"kind":"prelu","initial_slope":0.25}. The
    // kind and the config must be enough to make the layer again (step 2).
    std::string kind() const override { return "prelu"; }
    nnmark::layer_config config() const override { return {{"initial_slope", initial_slope_}}; }

    // Items [C, H, W] (or [C]) keep their shape.
    nnmark::shape configure(const nnmark::shape& input_item) override {
        item_ = input_item;
        per_channel_ = input_item.count() / input_item[0];
        return input_item;
    }

    // One slope per channel: not weight-decayed (a decay would pull it to a plain ReLU).
    std::vector<nnmark::param_spec> param_specs() const override {
        return {{"weight", nnmark::shape{item_[0]}, /*trainable=*/true, /*decayed=*/false}};
    }
    // The model owns the values and the gradients; the layer gets views of its slice.
    void bind(std::span<T> params, std::span<T> grads) override {
        slope_ = params;
        slope_grad_ = grads;
    }
    void initialize(nnmark::rng&) override { std::ranges::fill(slope_, static_cast<T>(initial_slope_)); }

    // infer() is const and keeps nothing: one model may serve many threads at once.
    void infer(const nnmark::tensor<T>& x, nnmark::tensor<T>& y, nnmark::workspace<T>&) const override {
        nnmark::expect_input(x, item_, kind());
        y.resize(x.shape());
        for_each_value(x, [&](nnmark::index_t i, std::size_t c) { y[i] = x[i] > 0 ? x[i] : slope_[c] * x[i]; });
    }

    // Backward WRITES dL/dx and ADDS dL/da into the gradient (the trainer zeroes it):
    //     dL/dx = dy (x > 0) or a[c] dy,   dL/da[c] += sum of dy * x where x <= 0.
    void backward(const nnmark::tensor<T>& x, const nnmark::tensor<T>&, const nnmark::tensor<T>& dy,
                  nnmark::tensor<T>& dx, const nnmark::tensor<T>&, nnmark::backward_context<T>& ctx) override {
        if (ctx.input_grad) dx.resize(x.shape());
        for_each_value(x, [&](nnmark::index_t i, std::size_t c) {
            const bool positive = x[i] > 0;
            if (ctx.param_grads && !positive) slope_grad_[c] += dy[i] * x[i];
            if (ctx.input_grad) dx[i] = positive ? dy[i] : slope_[c] * dy[i];
        });
    }

private:
    // body(i, c) for every value i of a batch in order, c its channel (NCHW).
    template <class Body>
    void for_each_value(const nnmark::tensor<T>& x, Body&& body) const {
        for (nnmark::index_t i = 0; i < x.size(); ++i)
            body(i, static_cast<std::size_t>(i / per_channel_ % item_[0]));
    }

    double initial_slope_;
    nnmark::shape item_;
    nnmark::index_t per_channel_ = 1;
    std::span<T> slope_, slope_grad_;
};

// A residual block, y = x + conv(relu(conv(x))): two 3x3 convolutions with "same"
// padding and as many filters as the input has channels, so that y has x's shape.
std::unique_ptr<nnmark::residual<float>> basic_block(nnmark::index_t channels) {
    auto block = std::make_unique<nnmark::residual<float>>();
    block->emplace<nnmark::conv2d>(channels, 3, 1, nnmark::padding::same);
    block->emplace<nnmark::relu>();
    block->emplace<nnmark::conv2d>(channels, 3, 1, nnmark::padding::same);
    return block;
}

// The logits of every image of `data`, in order.
std::vector<float> all_logits(const nnmark::sequential<float>& model, const nnmark::dataset& data) {
    std::vector<float> out;
    nnmark::for_each_batch_logits(model, data, 500, [&](nnmark::index_t, const nnmark::tensor<float>& logits) {
        out.insert(out.end(), logits.data(), logits.data() + logits.size());
    });
    return out;
}

int main(int argc, char** argv) try {
    const std::string data_dir = argc > 1 ? argv[1] : "datasets/mnist";
    const int epochs = argc > 2 ? std::atoi(argv[2]) : 5;
    const std::string out = argc > 3 ? argv[3] : "custom_network.safetensors";

    // 2. Register the layer, once, before any model is built from a description: the
    //    replicas of data-parallel training and load_model make layers from their kind
    //    and config, and this tells them how. config_reader reports missing, mistyped
    //    and unexpected keys in the words the built-in layers use.
    nnmark::register_layer<float>("prelu", [](nnmark::config_reader& c) {
        return std::make_unique<prelu<float>>(c.real("initial_slope"));
    });

    // 3. Data, as in examples/mnist.cpp: uint8 images [N, 1, 28, 28], fed as pixel / 255.
    const nnmark::dataset train = nnmark::load_dataset("mnist", data_dir, /*train=*/true);
    const nnmark::dataset test = nnmark::load_dataset("mnist", data_dir, /*train=*/false);
    std::printf("MNIST: %lld training and %lld test images\n", static_cast<long long>(train.size()),
                static_cast<long long>(test.size()));

    // 4. The network, layer by layer. Each layer is configured with the shape the one
    //    before it gives: [1, 28, 28] -> conv [32, 28, 28] -> pool [32, 14, 14] -> two
    //    blocks -> pool [32, 7, 7] -> one block -> global average [32] -> 10 logits.
    //    The global average pooling lets the dense layer see 32 values, not 32 x 7 x 7.
    //    No batch normalization: its batch statistics tie the items of a batch together,
    //    and such a model trains as one shard (train/data_parallel.hpp); this one splits
    //    every batch among the threads, each running the whole network on its share.
    nnmark::sequential<float> model(nnmark::shape{1, 28, 28});
    model.emplace<nnmark::conv2d>(32, 3, 1, nnmark::padding::same);
    model.emplace<nnmark::relu>();
    model.emplace<nnmark::maxpool2d>(2);
    model.add(basic_block(32));
    model.add(std::make_unique<prelu<float>>(0.25));
    model.add(basic_block(32));
    model.add(std::make_unique<prelu<float>>(0.25));
    model.emplace<nnmark::maxpool2d>(2);
    model.add(basic_block(32));
    model.add(std::make_unique<prelu<float>>(0.25));
    model.emplace<nnmark::global_avgpool2d>();
    model.emplace<nnmark::dense>(10);

    // Initial weights come from the seed alone (He initialization), except that each
    // block starts as the identity: the last convolution of its branch at zero (as in
    // Fixup, Zhang et al. 2019). Without batch norm, branches that start at full size
    // add up from block to block, and SGD at the recipe's learning rate diverged.
    model.initialize(/*seed=*/1);
    for (const auto& p : model.named_parameters())
        if (model.at(p.layer).kind() == "residual" && p.spec.name == "2.weight") std::ranges::fill(p.value, 0.0f);
    std::printf("%lld parameters, %d threads\n", static_cast<long long>(model.parameters().size()),
                nnmark::thread_count());

    // 5. Train with the default recipe (SGD with Nesterov momentum, cosine schedule).
    //    The same seed and thread count give the same weights, bit for bit.
    nnmark::training_recipe recipe;
    recipe.epochs = epochs;
    nnmark::trainer<float> trainer(model, recipe);
    nnmark::progress_line progress;
    const auto start = std::chrono::steady_clock::now();
    trainer.fit(train, &test, progress);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const nnmark::evaluation result = nnmark::evaluate(model, test);
    std::printf("test accuracy: %.2f%% after %d epochs, %.0f s of training\n", 100 * result.accuracy(), epochs, seconds);

    // 6. Save. The file records the architecture as JSON, the residual blocks with their
    //    inner layers and the PReLU layers as {"kind":"prelu",...}, and every parameter
    //    under its name: "3.0.weight" is the first convolution of the block at index 3.
    nnmark::save_model(model, out, nnmark::dataset_class_names("mnist"));
    std::printf("model written to %s\n", out.c_str());

    // 7. Load it back as any program would, from the file alone (it finds "prelu" in the
    //    registry), and check that it answers exactly as the trained model does.
    const nnmark::sequential<float> loaded = nnmark::load_model<float>(out);
    const std::vector<float> before = all_logits(model, test), after = all_logits(loaded, test);
    const bool identical =
        before.size() == after.size() && std::memcmp(before.data(), after.data(), before.size() * sizeof(float)) == 0;
    std::printf("reloaded model: test logits %s\n", identical ? "bit-identical" : "DIFFERENT");
    return identical ? 0 : 1;
} catch (const nnmark::error& e) {
    std::fprintf(stderr, "example_custom_network: %s\n", e.what());
    return 2;
}
