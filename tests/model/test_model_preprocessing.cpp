#include "nnmark/model/model_file.hpp"
#include "nnmark/model/model_preprocessing.hpp"

#include "../support/errors.hpp"
#include "../support/files.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

using namespace nnmark;
using testing::error_message;
using testing::temp_dir;

namespace {

// conv(3, valid) -> relu -> flatten -> dense(4) on [2, 5, 5]; or, with padding same, a
// first layer the normalisation cannot be folded into.
sequential<double> conv_first_net(padding pad = padding::valid) {
    sequential<double> m(shape{2, 5, 5});
    m.emplace<conv2d>(3, 3, 1, pad);
    m.emplace<relu>();
    m.emplace<flatten>();
    m.emplace<dense>(4);
    m.initialize(3);
    return m;
}

// flatten -> dense(3) -> relu -> dense(2) on [2, 3, 3].
sequential<double> dense_first_net() {
    sequential<double> m(shape{2, 3, 3});
    m.emplace<flatten>();
    m.emplace<dense>(3);
    m.emplace<relu>();
    m.emplace<dense>(2);
    m.initialize(4);
    return m;
}

// A file of `model` whose metadata records `preprocessing` (a JSON text).
void write_with_preprocessing(const sequential<double>& model, const std::string& preprocessing,
                              const std::filesystem::path& path) {
    safetensors_writer w;
    for (const auto& p : model.named_parameters()) w.add_tensor<double>(p.name, dims_of(p.spec.shape), p.value);
    w.set_metadata("nnmark.architecture", architecture_json(model));
    w.set_metadata("nnmark.preprocessing", preprocessing);
    w.write(path);
}

// Inputs x in [0, 1] (nnmark's pixel / 255) for a model of item shape `item`.
tensor<double> pixels_over_255(const shape& item) {
    tensor<double> x(item.prepend(3));
    for (index_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>((i * 37) % 256) / 255;
    return x;
}

// max |a - b| over the elements.
double largest_difference(const tensor<double>& a, const tensor<double>& b) {
    REQUIRE(a.size() == b.size());
    double d = 0;
    for (index_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
    return d;
}

// What `model` trained on normalised inputs answers to nnmark's x: itself on
// (255 x * scale - mean[c]) / std[c], the map written out here independently of the fold.
tensor<double> on_normalised(const sequential<double>& model, tensor<double> x, double scale,
                             const std::vector<double>& mean, const std::vector<double>& deviation) {
    const index_t channels = x.shape()[1], plane = x.shape()[2] * x.shape()[3];
    for (index_t i = 0; i < x.size(); ++i) {
        const auto c = static_cast<std::size_t>((i / plane) % channels);
        x[i] = (255 * x[i] * scale - mean[c]) / deviation[c];
    }
    return model.predict(x);
}

const std::string normalised = R"({"scale":1.0,"mean":[100.0,30.5],"std":[64.0,12.25],"layout":"NCHW"})";

}  // namespace

TEST_CASE("model preprocessing: save_model records pixel / 255, no mean or std, NCHW and the class names") {
    temp_dir dir;
    const sequential<double> model = dense_first_net();
    save_model(model, dir.path / "m.safetensors", {"cat", "dog"});
    const safetensors_file file = safetensors_file::load(dir.path / "m.safetensors");
    const model_preprocessing p = parse_preprocessing(*file.find_metadata("nnmark.preprocessing"), "m", 2, 2);
    CHECK(p.scale == doctest::Approx(1.0 / 255).epsilon(1e-15));
    CHECK(p.mean == std::vector<double>{0, 0});
    CHECK(p.std == std::vector<double>{1, 1});
    CHECK(p.layout == "NCHW");
    CHECK(p.class_names == std::vector<std::string>{"cat", "dog"});
    CHECK(p.is_nnmark_input());
    // Loading it changes nothing.
    CHECK(load_model<double>(dir.path / "m.safetensors").parameters()[5] == model.parameters()[5]);
    CHECK(error_message([&] { save_model(model, dir.path / "x.safetensors", {"one"}); })
              .find("1 class names for a model of 2 outputs") != std::string::npos);
}

TEST_CASE("model preprocessing: a recorded normalisation is folded into a first convolution or dense layer") {
    temp_dir dir;
    const std::vector<double> mean{100.0, 30.5}, deviation{64.0, 12.25};
    for (const bool convolution_first : {true, false}) {
        const sequential<double> original = convolution_first ? conv_first_net() : dense_first_net();
        const auto path = dir.path / "normalised.safetensors";
        write_with_preprocessing(original, normalised, path);
        const sequential<double> folded = load_model<double>(path);
        const tensor<double> x = pixels_over_255(original.input_item());
        const tensor<double> expected = on_normalised(original, x, 1.0, mean, deviation);
        CHECK(largest_difference(folded.predict(x), expected) < 1e-10);
        // Without the fold the model answers something else: the test can tell.
        CHECK(largest_difference(original.predict(x), expected) > 1e-3);
        // Saved again, the file records nnmark's own input: the fold is not applied twice.
        save_model(folded, dir.path / "again.safetensors");
        CHECK(largest_difference(load_model<double>(dir.path / "again.safetensors").predict(x), expected) < 1e-10);
    }
}

TEST_CASE("model preprocessing: what cannot be honoured exactly is refused, and nothing is changed") {
    temp_dir dir;
    const auto path = dir.path / "m.safetensors";
    write_with_preprocessing(conv_first_net(padding::same), normalised, path);
    CHECK(error_message([&] { load_model<double>(path); }).find("its first convolution is padded") != std::string::npos);

    sequential<double> relu_first(shape{1, 2, 2});
    relu_first.emplace<relu>();
    relu_first.emplace<flatten>();
    relu_first.emplace<dense>(2);
    relu_first.initialize(1);
    write_with_preprocessing(relu_first, R"({"scale":1.0,"mean":[0.5],"std":[2.0],"layout":"NCHW"})", path);
    CHECK(error_message([&] { load_model<double>(path); }).find("its first layer is a relu") != std::string::npos);
    // load_weights leaves the model as it was.
    sequential<double> target(shape{1, 2, 2});
    target.emplace<relu>();
    target.emplace<flatten>();
    target.emplace<dense>(2);
    target.initialize(2);
    for (auto& p : target.named_parameters())
        for (double& v : p.value) v = 7;
    CHECK_THROWS_AS(load_weights(target, path), format_error);
    for (const auto& p : target.named_parameters())
        for (double v : p.value) CHECK(v == 7);

    const sequential<double> net = dense_first_net();
    const auto refused = [&](const std::string& text) {
        write_with_preprocessing(net, text, path);
        return error_message([&] { load_model<double>(path); });
    };
    CHECK(refused(R"({"scale":1.0,"mean":[0,0],"std":[1,1],"layout":"NHWC"})").find("expected \"NCHW\"") !=
          std::string::npos);
    CHECK(refused(R"({"scale":1.0,"mean":[0],"std":[1,1],"layout":"NCHW"})").find("one value per input channel (2), found 1") !=
          std::string::npos);
    CHECK(refused(R"({"scale":1.0,"mean":[0,0],"std":[1,0],"layout":"NCHW"})").find("expected a finite number > 0") !=
          std::string::npos);
    CHECK(refused(R"({"scale":-1,"mean":[0,0],"std":[1,1],"layout":"NCHW"})").find("scale") != std::string::npos);
    CHECK(refused(R"({"scale":1,"mean":[0,0],"std":[1,1],"layout":"NCHW","class_names":["a"]})")
              .find("one name per output of the model (2), found 1") != std::string::npos);
    CHECK(refused(R"({"scale":1,"mean":[0,0],"std":[1,1],"layout":"NCHW","colour":"rgb"})").find("unexpected key") !=
          std::string::npos);
}
