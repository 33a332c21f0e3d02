#include "nnmark/model/model_file.hpp"

#include "../support/files.hpp"
#include "../support/safetensors_bytes.hpp"
#include "../support/user_layer.hpp"

#include <doctest/doctest.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <filesystem>
#include <string>
#include <vector>

using namespace nnmark;
using testing::error_message;
using testing::temp_dir;

namespace {

// conv(c) -> batchnorm -> relu -> flatten -> dense(3) on [1, 4, 4]: the network of
// the PyTorch test below, with `channels` convolution filters.
template <class T>
sequential<T> conv_bn_net(index_t channels) {
    sequential<T> m(shape{1, 4, 4});
    m.template emplace<conv2d>(channels, 3);
    m.template emplace<batchnorm>();
    m.template emplace<relu>();
    m.template emplace<flatten>();
    m.template emplace<dense>(3);
    return m;
}

// Initialized weights plus running statistics that are not the initial 0 / 1.
template <class T>
sequential<T> trained_looking_net(index_t channels, std::uint64_t seed) {
    sequential<T> m = conv_bn_net<T>(channels);
    m.initialize(seed);
    for (auto& p : m.named_parameters())
        if (p.spec.name == "running_mean" || p.spec.name == "running_var")
            for (std::size_t i = 0; i < p.value.size(); ++i) p.value[i] = T(0.25) * T(i + 1);
    return m;
}

template <class T>
tensor<T> sample_input() {
    tensor<T> x(shape{2, 1, 4, 4});
    for (index_t i = 0; i < x.size(); ++i) x[i] = T(((i * 3) % 17 - 8) * 0.125);
    return x;
}

// Same element type, same count, same bytes (NaN payloads and -0 included).
template <class A, class B>
bool same_bits(const A& a, const B& b) {
    static_assert(sizeof(a[0]) == sizeof(b[0]));
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0;
}

// A copy of `model`'s parameters as a writer, to damage in the tests.
template <class T>
safetensors_writer writer_of(const sequential<T>& model, bool with_architecture) {
    safetensors_writer w;
    for (const auto& p : model.named_parameters()) w.add_tensor<T>(p.name, dims_of(p.spec.shape), p.value);
    w.set_metadata("format", "pt");
    if (with_architecture) w.set_metadata("nnmark.architecture", architecture_json(model));
    return w;
}

}  // namespace

TEST_CASE("model file: save then load gives the same architecture and bit-identical parameters") {
    temp_dir dir;
    const auto path = dir.path / "m.safetensors";
    const sequential<float> original = trained_looking_net<float>(2, 11);
    save_model(original, path);

    const safetensors_file file = safetensors_file::load(path);
    CHECK(*file.find_metadata("format") == "pt");
    CHECK(*file.find_metadata("nnmark.version") == "1");
    CHECK(*file.find_metadata("nnmark.architecture") == architecture_json(original));
    CHECK(file.entries().size() == original.named_parameters().size());
    CHECK(file.find("0.weight")->dtype == "F32");
    CHECK(file.find("0.weight")->dims == std::vector<std::int64_t>{2, 1, 3, 3});
    CHECK(file.find("1.running_var")->values<float>() == std::vector<float>{0.25f, 0.5f});

    const sequential<float> loaded = load_model<float>(path);
    CHECK(architecture_json(loaded) == architecture_json(original));
    CHECK(same_bits(loaded.parameters(), original.parameters()));
    const tensor<float> x = sample_input<float>();
    const tensor<float> a = original.predict(x), b = loaded.predict(x);
    CHECK(same_bits(a.span(), b.span()));
}

TEST_CASE("model file: a residual network with a user's layer saves and loads bit for bit") {
    testing::register_test_layer<float>();
    sequential<float> original(shape{1, 4, 4});
    original.emplace<conv2d>(2, 3, 1, padding::same);
    auto block = std::make_unique<residual<float>>();
    block->emplace<conv2d>(2, 3, 1, padding::same);
    block->emplace<batchnorm>();
    block->emplace<relu>();
    block->add(std::make_unique<testing::channel_scale<float>>(0.5));
    original.add(std::move(block));
    original.emplace<global_avgpool2d>();
    original.emplace<dense>(3);
    rng random(5);
    for (float& v : original.parameters()) v = static_cast<float>(random.uniform(0.5, 1.5));  // running_var > 0

    temp_dir dir;
    const auto path = dir.path / "residual.safetensors";
    save_model(original, path);
    const safetensors_file file = safetensors_file::load(path);
    CHECK(file.find("1.1.running_var")->dims == std::vector<std::int64_t>{2});
    CHECK(file.find("1.3.weight")->dims == std::vector<std::int64_t>{2});

    const sequential<float> loaded = load_model<float>(path);
    CHECK(architecture_json(loaded) == architecture_json(original));
    CHECK(same_bits(loaded.parameters(), original.parameters()));
    const tensor<float> x = sample_input<float>();
    const tensor<float> a = original.predict(x), b = loaded.predict(x);
    REQUIRE(a.shape() == shape{2, 3});
    CHECK(same_bits(a.span(), b.span()));
}

TEST_CASE("model file: double models are saved as F64 and round trip bit for bit") {
    temp_dir dir;
    const auto path = dir.path / "d.safetensors";
    const sequential<double> original = trained_looking_net<double>(3, 5);
    save_model(original, path);
    CHECK(safetensors_file::load(path).find("4.weight")->dtype == "F64");
    const sequential<double> loaded = load_model<double>(path);
    CHECK(same_bits(loaded.parameters(), original.parameters()));
}

TEST_CASE("model file: F32 and F64 files load into either precision") {
    temp_dir dir;
    const sequential<double> d = trained_looking_net<double>(2, 3);
    save_model(d, dir.path / "d.safetensors");
    const sequential<float> f = load_model<float>(dir.path / "d.safetensors");
    const auto fp = f.parameters();
    const auto dp = d.parameters();
    REQUIRE(fp.size() == dp.size());
    for (std::size_t i = 0; i < fp.size(); ++i) CHECK(fp[i] == static_cast<float>(dp[i]));

    save_model(f, dir.path / "f.safetensors");
    sequential<double> back = conv_bn_net<double>(2);
    load_weights(back, dir.path / "f.safetensors");
    for (std::size_t i = 0; i < fp.size(); ++i) CHECK(back.parameters()[i] == static_cast<double>(fp[i]));
}

TEST_CASE("model file: a file for another architecture is rejected, naming both shapes") {
    temp_dir dir;
    const auto path = dir.path / "wide.safetensors";
    const sequential<float> wide = trained_looking_net<float>(4, 1);
    save_model(wide, path);
    sequential<float> narrow = trained_looking_net<float>(2, 2);
    const std::vector<float> before(narrow.parameters().begin(), narrow.parameters().end());
    const std::string message = error_message([&] { load_weights(narrow, path); });
    CHECK(message == "model file " + path.string() + " was saved for another architecture (layer 0: " +
                         dump_json(layer_json(wide.at(0))) + ", this model: " + dump_json(layer_json(narrow.at(0))) +
                         "): tensor 0.weight has shape [4, 1, 3, 3], this model expects [2, 1, 3, 3]");
    CHECK_THROWS_AS(load_weights(narrow, path), shape_error);
    CHECK(std::equal(before.begin(), before.end(), narrow.parameters().begin()));  // left unchanged
}

TEST_CASE("model file: missing, extra, mistyped and misshapen tensors are rejected") {
    temp_dir dir;
    const auto path = dir.path / "bad.safetensors";
    const sequential<float> source = trained_looking_net<float>(2, 4);
    sequential<float> target = conv_bn_net<float>(2);
    const std::string file = "model file " + path.string();

    SUBCASE("missing") {
        safetensors_writer w;
        for (const auto& p : source.named_parameters())
            if (p.name != "4.bias") w.add_tensor<float>(p.name, dims_of(p.spec.shape), p.value);
        w.write(path);
        CHECK(error_message([&] { load_weights(target, path); }) == file + ": tensor 4.bias (shape [3]) is missing");
    }
    SUBCASE("extra") {
        safetensors_writer w = writer_of(source, false);
        w.add_tensor<float>("5.weight", {1}, std::vector<float>{1.f});
        w.write(path);
        CHECK(error_message([&] { load_weights(target, path); }) ==
              file + ": tensor 5.weight (F32, shape [1]) matches no parameter of this model");
    }
    SUBCASE("wrong dtype") {
        safetensors_writer w;
        for (const auto& p : source.named_parameters()) {
            if (p.name == "1.bias") w.add_tensor<std::int32_t>(p.name, {2}, std::vector<std::int32_t>{0, 0});
            else w.add_tensor<float>(p.name, dims_of(p.spec.shape), p.value);
        }
        w.write(path);
        CHECK(error_message([&] { load_weights(target, path); }) == file + ": tensor 1.bias has dtype I32, expected F32, F64, F16 or BF16");
    }
    SUBCASE("wrong shape, same element count") {
        safetensors_writer w;
        for (const auto& p : source.named_parameters()) {
            const auto dims = p.name == "4.weight" ? std::vector<std::int64_t>{24, 1} : dims_of(p.spec.shape);
            w.add_tensor<float>(p.name, dims, p.value);
        }
        w.write(path);
        CHECK(error_message([&] { load_weights(target, path); }) ==
              file + ": tensor 4.weight has shape [24, 1], this model expects [3, 8]");
    }
    SUBCASE("num_batches_tracked only as I64 beside a batch norm layer") {
        safetensors_writer w = writer_of(source, false);
        w.add_tensor<std::int64_t>("1.num_batches_tracked", {}, std::vector<std::int64_t>{100});
        w.write(path);
        load_weights(target, path);
        CHECK(same_bits(target.parameters(), source.parameters()));

        w.add_tensor<std::int64_t>("0.num_batches_tracked", {}, std::vector<std::int64_t>{100});
        w.write(path);
        CHECK(error_message([&] { load_weights(target, path); }) ==
              file + ": tensor 0.num_batches_tracked (I64, shape []) matches no parameter of this model");

        safetensors_writer f = writer_of(source, false);
        f.add_tensor<float>("1.num_batches_tracked", {}, std::vector<float>{100.f});
        f.write(path);
        CHECK(error_message([&] { load_weights(target, path); }) ==
              file + ": tensor 1.num_batches_tracked (F32, shape []) matches no parameter of this model");
    }
}

TEST_CASE("model file: load_model needs valid nnmark metadata") {
    temp_dir dir;
    const auto path = dir.path / "m.safetensors";
    const sequential<float> source = trained_looking_net<float>(2, 4);

    writer_of(source, false).write(path);
    CHECK(error_message([&] { load_model<float>(path); }) ==
          "model file " + path.string() +
              " has no \"nnmark.architecture\" metadata (a weights-only file), so the network cannot be rebuilt "
              "from it; name the network (nnmark: --arch; C++: load_model(path, network))");

    safetensors_writer w = writer_of(source, false);
    w.set_metadata("nnmark.architecture", R"({"format":"nnmark.sequential","version":1,"input":[1,4,4],"layers":[{"kind":"conv2d"}]})");
    w.write(path);
    CHECK(error_message([&] { load_model<float>(path); }) ==
          path.string() + ": metadata nnmark.architecture: architecture.layers[0]: conv2d: missing key \"out_channels\"");
    CHECK_THROWS_AS(load_model<float>(path), format_error);

    safetensors_writer v = writer_of(source, true);
    v.set_metadata("nnmark.version", "2");
    v.write(path);
    CHECK(error_message([&] { load_model<float>(path); }) ==
          "model file " + path.string() + " has nnmark.version \"2\"; this build reads version 1");

    // The file's own tensors must fit the architecture it records.
    safetensors_writer lying = writer_of(trained_looking_net<float>(4, 1), false);
    lying.set_metadata("nnmark.architecture", architecture_json(source));
    lying.write(path);
    CHECK(error_message([&] { load_model<float>(path); }) ==
          "model file " + path.string() + ": tensor 0.weight has shape [4, 1, 3, 3], this model expects [2, 1, 3, 3]");

    CHECK_THROWS_AS(load_model<float>(dir.path / "absent.safetensors"), io_error);
}

// The file below is byte for byte what this script (torch 1.13) writes. It builds the
// file as safetensors.torch.save_file does (tensors sorted by dtype, I64 first, then by
// name; compact header padded with spaces), because the safetensors package itself is
// not installed here. `y` is what PyTorch computes for the input of sample_input().
//
//   import json, struct, torch
//   m = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU(),
//                           torch.nn.Flatten(), torch.nn.Linear(8, 3))
//   f = lambda n, a, b, s: torch.tensor([((i * a) % b - (b // 2)) * s for i in range(n)])
//   with torch.no_grad():
//       m[0].weight.copy_(f(18, 5, 11, 0.125).reshape(2, 1, 3, 3)); m[0].bias.copy_(torch.tensor([0.25, -0.5]))
//       m[1].weight.copy_(torch.tensor([1.5, 0.75])); m[1].bias.copy_(torch.tensor([0.125, -0.25]))
//       m[1].running_mean.copy_(torch.tensor([0.5, -0.25])); m[1].running_var.copy_(torch.tensor([2.0, 0.5]))
//       m[1].num_batches_tracked.fill_(7)
//       m[4].weight.copy_(f(24, 7, 13, 0.0625).reshape(3, 8)); m[4].bias.copy_(torch.tensor([0.5, -0.125, 0.0]))
//   m.eval(); y = m(f(32, 3, 17, 0.125).reshape(2, 1, 4, 4))
//   sd = m.state_dict(); order = sorted(sd, key=lambda k: (sd[k].dtype != torch.int64, k))
//   header, data = {"__metadata__": {"format": "pt"}}, b""
//   for k in order:
//       b = sd[k].contiguous().numpy().tobytes()
//       header[k] = {"dtype": "I64" if sd[k].dtype == torch.int64 else "F32", "shape": list(sd[k].shape),
//                    "data_offsets": [len(data), len(data) + len(b)]}
//       data += b
//   h = json.dumps(header, separators=(",", ":")).encode(); h += b" " * (-len(h) % 8)
//   open("torch.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + data)
TEST_CASE("model file: a PyTorch state_dict saved as safetensors loads and computes what PyTorch computes") {
    const std::string header =
        R"({"__metadata__":{"format":"pt"},"1.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[0,8]},)"
        R"("0.bias":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
        R"("0.weight":{"dtype":"F32","shape":[2,1,3,3],"data_offsets":[16,88]},)"
        R"("1.bias":{"dtype":"F32","shape":[2],"data_offsets":[88,96]},)"
        R"("1.running_mean":{"dtype":"F32","shape":[2],"data_offsets":[96,104]},)"
        R"("1.running_var":{"dtype":"F32","shape":[2],"data_offsets":[104,112]},)"
        R"("1.weight":{"dtype":"F32","shape":[2],"data_offsets":[112,120]},)"
        R"("4.bias":{"dtype":"F32","shape":[3],"data_offsets":[120,132]},)"
        R"("4.weight":{"dtype":"F32","shape":[3,8],"data_offsets":[132,228]}}   )";
    REQUIRE(header.size() % 8 == 0);
    const auto pattern = [](int n, int a, int b, float s) {
        std::vector<float> v;
        for (int i = 0; i < n; ++i) v.push_back(static_cast<float>((i * a) % b - b / 2) * s);
        return v;
    };
    testing::bytes data = testing::raw_bytes(std::vector<std::int64_t>{7});
    for (const auto& values : {std::vector<float>{0.25f, -0.5f}, pattern(18, 5, 11, 0.125f),
                               std::vector<float>{0.125f, -0.25f}, std::vector<float>{0.5f, -0.25f},
                               std::vector<float>{2.0f, 0.5f}, std::vector<float>{1.5f, 0.75f},
                               std::vector<float>{0.5f, -0.125f, 0.0f}, pattern(24, 7, 13, 0.0625f)})
        testing::append_raw_bytes(data, values);
    const testing::bytes bytes = testing::safetensors_bytes(header, data);
    REQUIRE(bytes.size() == 8 + header.size() + 228);

    temp_dir dir;
    const auto path = dir.path / "torch.safetensors";
    testing::write_bytes(path, bytes);
    sequential<float> m = conv_bn_net<float>(2);
    load_weights(m, path);
    const tensor<float> y = m.predict(sample_input<float>());
    const float expected[] = {-0.102182508f, -0.242431074f, 0.346550107f, 0.456054688f, -0.208192199f, -0.198222235f};
    REQUIRE(y.shape() == shape{2, 3});
    for (int i = 0; i < 6; ++i) CHECK(y[i] == doctest::Approx(expected[i]).epsilon(1e-5));

    // Saved again by nnmark, PyTorch's loader finds the same tensors (minus the counter).
    save_model(m, dir.path / "again.safetensors");
    const safetensors_file again = safetensors_file::load(dir.path / "again.safetensors");
    const safetensors_file torch_file = safetensors_file::load(path);
    CHECK(again.entries().size() == torch_file.entries().size() - 1);
    for (const safetensors_entry& e : again.entries()) {
        const safetensors_entry* t = torch_file.find(e.name);
        REQUIRE(t != nullptr);
        CHECK(t->dims == e.dims);
        CHECK(std::equal(t->bytes.begin(), t->bytes.end(), e.bytes.begin(), e.bytes.end()));
    }
}

TEST_CASE("model sizes: a layer too large for memory is refused before anything is allocated") {
    sequential<float> net(shape{16});
    CHECK_THROWS_WITH_AS(net.emplace<dense>(index_t{1'000'000'000'000}),
                         doctest::Contains("layer 0 (dense): 17000000000000 parameters"), shape_error);
    CHECK(net.size() == 0);  // left as it was
    CHECK(net.output_item() == shape{16});
    // Products beyond 2^64 are reported, not wrapped.
    CHECK_THROWS_WITH_AS(net.emplace<dense>(index_t{1} << 62), doctest::Contains("more than 2^64"), shape_error);
    net.emplace<dense>(3);  // a layer that fits is still added
    CHECK(net.parameters().size() == 51);
}

TEST_CASE("model file: metadata claiming a larger network than the tensors is refused before building it") {
    temp_dir dir;
    sequential<float> small(shape{4});
    small.emplace<dense>(3);
    save_model(small, dir.path / "small.safetensors");
    const safetensors_file file = safetensors_file::load(dir.path / "small.safetensors");
    safetensors_writer writer;
    for (const auto& e : file.entries()) writer.add_tensor(e.name, e.dtype, e.dims, e.bytes);
    writer.set_metadata("nnmark.architecture",
                        R"({"format":"nnmark.sequential","version":1,"input":[4],"layers":[{"kind":"dense","out_features":2000000000}]})");
    writer.write(dir.path / "claims.safetensors");
    CHECK_THROWS_WITH_AS(load_model<float>(dir.path / "claims.safetensors"),
                         doctest::Contains("tensor 0.weight has shape [3, 4], this model expects [2000000000, 4]"),
                         shape_error);
}

TEST_CASE("model file: a NaN or infinite weight is refused, naming the tensor and the element") {
    temp_dir dir;
    for (const float bad : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
        sequential<float> net(shape{4});
        net.emplace<dense>(3);
        net.named_parameters()[1].value[2] = bad;  // 0.bias
        save_model(net, dir.path / "bad.safetensors");
        CHECK_THROWS_WITH_AS(load_model<float>(dir.path / "bad.safetensors"),
                             doctest::Contains("tensor 0.bias holds a non-finite value (NaN or infinity) at element 2"),
                             format_error);
        sequential<double> into(shape{4});
        into.emplace<dense>(3);
        CHECK_THROWS_AS(load_weights(into, dir.path / "bad.safetensors"), format_error);
        CHECK(into.parameters()[0] == 0.0);  // unchanged
    }
}

TEST_CASE("model file: F16 and BF16 tensors load into float and double models, converted exactly") {
    // Values every format holds exactly, as PyTorch's model.half() / model.bfloat16()
    // would store them: k / 8 for small k.
    const sequential<float> layout = trained_looking_net<float>(2, 9);
    temp_dir dir;
    for (const std::string dtype : {"F16", "BF16"}) {
        safetensors_writer w;
        std::vector<float> expected;
        for (const auto& p : layout.named_parameters()) {
            std::vector<std::uint16_t> halves;
            for (std::size_t i = 0; i < p.value.size(); ++i) {
                const float v = static_cast<float>(static_cast<int>(i % 17) - 8) / 8;
                expected.push_back(v);
                // k / 8 as binary16 and as bfloat16, built from the float's bits: both
                // keep its sign and exponent and the top of its fraction (exact here).
                const auto f = std::bit_cast<std::uint32_t>(v);
                halves.push_back(dtype == "BF16" ? static_cast<std::uint16_t>(f >> 16)
                                 : v == 0        ? std::uint16_t{0}
                                                 : static_cast<std::uint16_t>(((f >> 16) & 0x8000) |
                                                                              ((((f >> 23) & 0xff) - 127 + 15) << 10) |
                                                                              ((f >> 13) & 0x3ff)));
            }
            const auto* raw = reinterpret_cast<const unsigned char*>(halves.data());
            w.add_tensor(p.name, dtype, dims_of(p.spec.shape), std::span(raw, halves.size() * 2));
        }
        w.set_metadata("nnmark.architecture", architecture_json(layout));
        const auto path = dir.path / (dtype + ".safetensors");
        w.write(path);
        const sequential<float> f = load_model<float>(path);
        const sequential<double> d = load_model<double>(path);
        REQUIRE(f.parameters().size() == expected.size());
        for (std::size_t i = 0; i < expected.size(); ++i) {
            CHECK(f.parameters()[i] == expected[i]);
            CHECK(d.parameters()[i] == static_cast<double>(expected[i]));
        }
    }
}

TEST_CASE("model file: a weights-only file loads into a network the caller names, and only into its own") {
    temp_dir dir;
    const sequential<float> original = trained_looking_net<float>(2, 13);
    writer_of(original, false).write(dir.path / "weights.safetensors");
    CHECK(error_message([&] { load_model<float>(dir.path / "weights.safetensors"); }).find("--arch") != std::string::npos);
    const sequential<float> loaded = load_model<float>(dir.path / "weights.safetensors", conv_bn_net<float>(2));
    CHECK(same_bits(loaded.parameters(), original.parameters()));
    CHECK(same_bits(loaded.predict(sample_input<float>()).span(), original.predict(sample_input<float>()).span()));

    // A full file loads into its own network too, but not into another one, even one
    // whose parameters have the same shapes (here: batch norm momentum 0.2, not 0.1).
    save_model(original, dir.path / "full.safetensors");
    CHECK(same_bits(load_model<float>(dir.path / "full.safetensors", conv_bn_net<float>(2)).parameters(),
                    original.parameters()));
    sequential<float> other(shape{1, 4, 4});
    other.emplace<conv2d>(2, 3);
    other.emplace<batchnorm>(0.2);
    other.emplace<relu>();
    other.emplace<flatten>();
    other.emplace<dense>(3);
    CHECK(error_message([&] { load_model<float>(dir.path / "full.safetensors", std::move(other)); })
              .find("was saved for another architecture") != std::string::npos);
}
