#include "nnmark/model/model_digest.hpp"

#include "nnmark/model/model_file.hpp"

#include "../support/files.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

using namespace nnmark;
using testing::temp_dir;

namespace {

// conv(2) -> relu -> flatten -> dense(3) on [1, 4, 4], initialized from `seed`.
template <class T>
sequential<T> small_net(std::uint64_t seed) {
    sequential<T> m(shape{1, 4, 4});
    m.template emplace<conv2d>(2, 3);
    m.template emplace<relu>();
    m.template emplace<flatten>();
    m.template emplace<dense>(3);
    m.initialize(seed);
    return m;
}

}  // namespace

TEST_CASE("model_digest: SHA-256 of the documented byte string") {
    const sequential<float> m = small_net<float>(1);
    const std::string architecture = architecture_json(m);
    std::string message("nnmark-model-v1\0", 16);
    for (int i = 0; i < 8; ++i) message.push_back(static_cast<char>(architecture.size() >> (8 * i)));
    message += architecture;
    const std::span<const float> values = m.parameters();
    message.append(reinterpret_cast<const char*>(values.data()), values.size_bytes());
    CHECK(model_digest(m) == sha256_hex(message));
    CHECK(model_digest(m).size() == 64);
}

TEST_CASE("model_digest: equal for identical models, different after one parameter changes") {
    const sequential<float> a = small_net<float>(7);
    sequential<float> b = small_net<float>(7);
    CHECK(model_digest(a) == model_digest(b));
    const std::string before = model_digest(b);
    b.parameters()[b.parameters().size() - 1] += 1e-6f;
    CHECK(model_digest(b) != before);
    b.parameters()[b.parameters().size() - 1] -= 1e-6f;
    b.parameters()[0] = -b.parameters()[0];
    CHECK(model_digest(b) != before);
    CHECK(model_digest(small_net<float>(8)) != model_digest(a));
}

TEST_CASE("model_digest: the architecture counts, even for layers without parameters") {
    sequential<float> plain(shape{1, 4, 4});
    plain.emplace<flatten>();
    plain.emplace<dense>(3);
    plain.initialize(3);
    sequential<float> with_relu(shape{1, 4, 4});
    with_relu.emplace<flatten>();
    with_relu.emplace<dense>(3);
    with_relu.emplace<relu>();
    with_relu.initialize(3);
    REQUIRE(std::equal(plain.parameters().begin(), plain.parameters().end(), with_relu.parameters().begin(),
                       with_relu.parameters().end()));
    CHECK(model_digest(plain) != model_digest(with_relu));
}

TEST_CASE("model_digest: survives a save and load, and a double model hashes as its float32 file") {
    temp_dir dir;
    const sequential<float> m = small_net<float>(5);
    save_model(m, dir / "m.safetensors");
    CHECK(model_digest(load_model<float>(dir / "m.safetensors")) == model_digest(m));
    CHECK(model_digest(load_model<double>(dir / "m.safetensors")) == model_digest(m));
}
