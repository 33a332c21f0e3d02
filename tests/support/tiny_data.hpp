// A tiny learnable dataset and network for tests that train: 8x8 grey images whose
// class (0..3) decides which quadrant is bright, plus noise; and a small conv net
// that learns it in a few dozen steps, even under the sanitizers; and a small network
// for MNIST-shaped images.
#pragma once

#include "nnmark/core/rng.hpp"
#include "nnmark/data/dataset.hpp"
#include "nnmark/layers/conv2d.hpp"
#include "nnmark/layers/dense.hpp"
#include "nnmark/layers/dropout.hpp"
#include "nnmark/layers/flatten.hpp"
#include "nnmark/layers/maxpool2d.hpp"
#include "nnmark/layers/relu.hpp"
#include "nnmark/model/sequential.hpp"

#include <algorithm>
#include <cmath>

namespace nnmark::testing {

inline dataset make_quadrant_dataset(index_t count, std::uint64_t seed, int classes = 4) {
    dataset data{tensor<std::uint8_t>(shape{count, 1, 8, 8}), std::vector<int>(static_cast<std::size_t>(count)), classes,
                 "quadrants"};
    rng random(seed);
    for (index_t i = 0; i < count; ++i) {
        const int label = static_cast<int>(random.below(static_cast<std::uint64_t>(classes)));
        data.labels[static_cast<std::size_t>(i)] = label;
        std::uint8_t* image = data.images.item(i).data();
        for (index_t y = 0; y < 8; ++y)
            for (index_t x = 0; x < 8; ++x) {
                const int quadrant = static_cast<int>((y / 4) * 2 + x / 4);
                const double value = (quadrant == label % 4 ? 180.0 : 40.0) + random.normal(0, 30);
                image[y * 8 + x] = static_cast<std::uint8_t>(std::clamp(std::lround(value), 0L, 255L));
            }
    }
    return data;
}

// A small conv net for images of `input_item` ([C, H, W]), far cheaper than the paper's
// under the sanitizers: conv 4x3x3, relu, maxpool 2, dense 16, relu, [dropout], dense.
// The tool's tests use it too (the tool rebuilds it from the model file, or reads it
// with --arch).
template <class T>
sequential<T> make_small_image_net(const shape& input_item, int classes = 10, double dropout_rate = 0) {
    sequential<T> net(input_item);
    net.template emplace<conv2d>(4, 3);
    net.template emplace<relu>();
    net.template emplace<maxpool2d>(2);
    net.template emplace<flatten>();
    net.template emplace<dense>(16);
    net.template emplace<relu>();
    if (dropout_rate > 0) net.template emplace<dropout>(dropout_rate);
    net.template emplace<dense>(classes);
    return net;
}

// The net for the quadrant images.
template <class T>
sequential<T> make_tiny_net(int classes = 4) {
    return make_small_image_net<T>(shape{1, 8, 8}, classes, 0.25);
}

template <class T>
sequential<T> make_small_mnist_net() {
    return make_small_image_net<T>(shape{1, 28, 28});
}

}  // namespace nnmark::testing
