// model_digest: a SHA-256 fingerprint of a model's architecture and parameter values,
// which a watermark key's recipe records to name the model it was embedded into.
//
// The digest is SHA-256 over
//     "nnmark-model-v1\0"          16 bytes, the domain tag with its NUL
//     L                            the byte length of the architecture JSON, uint64 little endian
//     architecture_json(model)     L bytes (model/layer_factory.hpp)
//     every parameter value        float32 little endian, in named_parameters() order
// as lowercase hex. Values are hashed as float32, the precision of model files, so a
// double model has the digest of the float model it would be saved as. Unlike the
// SHA-256 of a model file, it does not depend on the file's metadata or header layout.
#pragma once

#include "nnmark/core/sha256.hpp"
#include "nnmark/model/layer_factory.hpp"
#include "nnmark/model/sequential.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace nnmark {

static_assert(std::endian::native == std::endian::little,
              "nnmark/model/model_digest.hpp: float32 values are hashed as raw bytes; add byte swapping for big-endian hosts");

template <class T>
std::string model_digest(const sequential<T>& model) {
    sha256 hasher;
    hasher.update(std::string_view("nnmark-model-v1\0", 16));
    const std::string architecture = architecture_json(model);
    std::array<unsigned char, 8> length{};
    for (std::size_t i = 0; i < length.size(); ++i)
        length[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(architecture.size()) >> (8 * i));
    hasher.update(length).update(architecture);
    // Converted in chunks: one EVP update per value would dominate the cost.
    std::array<float, 4096> chunk;
    const std::span<const T> values = model.parameters();
    for (std::size_t at = 0; at < values.size(); at += chunk.size()) {
        const std::size_t n = std::min(chunk.size(), values.size() - at);
        std::transform(values.begin() + static_cast<std::ptrdiff_t>(at),
                       values.begin() + static_cast<std::ptrdiff_t>(at + n), chunk.begin(),
                       [](T v) { return static_cast<float>(v); });
        hasher.update(std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(chunk.data()), n * sizeof(float)));
    }
    return to_hex(hasher.finish());
}

}  // namespace nnmark
