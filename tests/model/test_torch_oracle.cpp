// The PyTorch oracle: whole models, forward and backward, against PyTorch 1.13.
//
// Needs torch: when the python (NNMARK_PYTHON, default /usr/bin/python3, where Debian's
// python3-torch installs) cannot import it, the tests skip (support/skips.hpp), which
// CTest and Meson report as SKIP. .ci/run installs python3-torch, so CI runs them.
#include "nnmark/layers/softmax_cross_entropy.hpp"
#include "nnmark/model/layer_factory.hpp"
#include "nnmark/model/model_file.hpp"
#include "nnmark/model/paper_models.hpp"
#include "nnmark/model/safetensors.hpp"

#include "../support/files.hpp"
#include "../support/skips.hpp"
#include "../support/torch_oracle.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <string>

using namespace nnmark;
using namespace nnmark::testing;

namespace {

// max |a - b| / max(max |b|, floor): the error relative to the tensor's scale. The
// floor matters for a gradient that is zero in exact arithmetic (a conv bias right
// before batch norm), where both frameworks return rounding noise: it is 1% of the
// model's largest gradient, so such noise is measured against the gradients that count.
double relative_error(std::span<const float> ours, std::span<const float> theirs, double floor = 1e-12) {
    REQUIRE(ours.size() == theirs.size());
    double diff = 0, scale = floor;
    for (std::size_t i = 0; i < ours.size(); ++i) {
        diff = std::max(diff, std::abs(static_cast<double>(ours[i]) - theirs[i]));
        scale = std::max(scale, std::abs(static_cast<double>(theirs[i])));
    }
    return diff / scale;
}

// Builds the model described by `architecture`, runs one training step's forward and
// backward on a random batch in nnmark and in PyTorch, and compares everything; skips
// the test when torch is missing.
void compare_with_torch(const std::string& architecture) {
    if (!torch_available()) return skip_test(torch_missing_reason());
    const temp_dir dir;
    sequential<float> model = build_from_architecture<float>(architecture, "oracle architecture");
    model.initialize(42);
    const auto model_path = dir / "model.safetensors";
    save_model(model, model_path);

    const index_t batch = 8;
    tensor<float> input(model.input_item().prepend(batch));
    rng random(7);
    for (index_t i = 0; i < input.size(); ++i) input[i] = static_cast<float>(random.uniform());
    std::vector<int> labels;
    std::vector<std::int64_t> labels64;
    for (index_t i = 0; i < batch; ++i) {
        labels.push_back(static_cast<int>(random.below(10)));
        labels64.push_back(labels.back());
    }
    safetensors_writer batch_file;
    batch_file.add_tensor<float>("input", dims_of(input.shape()), input.span());
    batch_file.add_tensor<std::int64_t>("labels", {batch}, labels64);
    batch_file.write(dir / "batch.safetensors");

    REQUIRE(run_torch_oracle(model_path.string() + " " + (dir / "batch.safetensors").string() + " " +
                             (dir / "torch.safetensors").string()) == 0);
    const safetensors_file expected = safetensors_file::load(dir / "torch.safetensors");

    training_trace<float> trace;
    rng masks(1);  // dropout rate 0 in these models: the masks keep everything
    const tensor<float>& logits = model.forward_train(input, trace, masks);
    tensor<float> grad_logits;
    const float loss = softmax_cross_entropy(logits, labels, &grad_logits);
    model.zero_gradients();
    model.backward(trace, grad_logits);

    CHECK(relative_error(logits.span(), expected.find("logits")->values<float>()) <= 1e-4);
    CHECK(std::abs(loss - expected.find("loss")->values<float>()[0]) <= 1e-4 * std::abs(loss));
    double largest_gradient = 0;
    for (const auto& p : model.named_parameters())
        for (float g : p.grad) largest_gradient = std::max(largest_gradient, std::abs(static_cast<double>(g)));
    int compared = 0;
    for (const auto& p : model.named_parameters()) {
        if (!p.spec.trainable) continue;
        const safetensors_entry* theirs = expected.find("grad." + p.name);
        REQUIRE_MESSAGE(theirs, "PyTorch gave no gradient for " << p.name);
        const double error = relative_error(p.grad, theirs->values<float>(), 1e-2 * largest_gradient);
        CHECK_MESSAGE(error <= 1e-4, p.name << ": relative error " << error);
        ++compared;
    }
    CHECK(compared == static_cast<int>(expected.entries().size()) - 2);
}

std::string without_dropout(std::string architecture) {
    // Dropout draws different masks in the two frameworks; rate 0 keeps the layer
    // (and so PyTorch's parameter numbering) but makes it the identity.
    for (std::size_t at; (at = architecture.find("\"rate\":0.5")) != std::string::npos;)
        architecture.replace(at, 10, "\"rate\":0.0");
    return architecture;
}

}  // namespace

TEST_CASE("oracle: the paper's MNIST network matches PyTorch (logits, loss, every gradient)" * NNMARK_EXTERNAL_TEST) {
    compare_with_torch(without_dropout(architecture_json(build_architecture<float>("paper-mnist"))));
}

TEST_CASE("oracle: batch norm, same padding and strides match PyTorch" * NNMARK_EXTERNAL_TEST) {
    const std::string architecture = R"({"format":"nnmark.sequential","version":1,"input":[3,11,11],"layers":[
        {"kind":"conv2d","out_channels":6,"kernel":3,"stride":1,"padding":"same"},
        {"kind":"batchnorm","momentum":0.1,"eps":1e-5},
        {"kind":"relu"},
        {"kind":"conv2d","out_channels":5,"kernel":3,"stride":2,"padding":"valid"},
        {"kind":"maxpool2d","size":2,"stride":2},
        {"kind":"flatten"},
        {"kind":"dense","out_features":7},
        {"kind":"batchnorm","momentum":0.1,"eps":1e-5},
        {"kind":"relu"},
        {"kind":"dense","out_features":10}]})";
    compare_with_torch(architecture);
}

TEST_CASE("oracle: a residual block with batch norm and global average pooling matches PyTorch" * NNMARK_EXTERNAL_TEST) {
    const std::string architecture = R"({"format":"nnmark.sequential","version":1,"input":[3,9,9],"layers":[
        {"kind":"conv2d","out_channels":6,"kernel":3,"stride":1,"padding":"same"},
        {"kind":"relu"},
        {"kind":"residual","layers":[
            {"kind":"conv2d","out_channels":6,"kernel":3,"stride":1,"padding":"same"},
            {"kind":"batchnorm","momentum":0.1,"eps":1e-5},
            {"kind":"relu"},
            {"kind":"conv2d","out_channels":6,"kernel":3,"stride":1,"padding":"same"}]},
        {"kind":"relu"},
        {"kind":"global_avgpool2d"},
        {"kind":"dense","out_features":10}]})";
    compare_with_torch(architecture);
}
