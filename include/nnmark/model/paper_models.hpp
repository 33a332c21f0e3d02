// The paper's two networks (Zhang et al., ASIACCS 2018, Appendix Tables 6-7, which
// take them from Carlini & Wagner 2017), as named builders.
//
//   conv3x3(a) relu conv3x3(a) relu maxpool2
//   conv3x3(b) relu conv3x3(b) relu maxpool2
//   flatten dense(d) relu dropout(0.5) dense(d) relu dense(10)
//
// paper-mnist:   a=32, b=64,  d=200, input [1, 28, 28]
// paper-cifar10: a=64, b=128, d=256, input [3, 32, 32]
//
// All convolutions are 'valid' 3x3 with stride 1. The paper says only "dropout 0.5
// before the dense layers"; Carlini & Wagner's code, which the paper's appendix
// follows, puts it between the first two dense layers, and so do we. The network
// ends in logits: softmax is fused into the loss (layers/softmax_cross_entropy.hpp).
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/layers/conv2d.hpp"
#include "nnmark/layers/dense.hpp"
#include "nnmark/layers/dropout.hpp"
#include "nnmark/layers/flatten.hpp"
#include "nnmark/layers/maxpool2d.hpp"
#include "nnmark/layers/relu.hpp"
#include "nnmark/model/sequential.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace nnmark {

struct paper_net_widths {
    index_t first_convs, second_convs, dense_units;
};

template <class T>
sequential<T> build_paper_net(const shape& input_item, paper_net_widths widths, index_t classes) {
    sequential<T> net(input_item);
    for (index_t channels : {widths.first_convs, widths.second_convs}) {
        net.template emplace<conv2d>(channels, 3);
        net.template emplace<relu>();
        net.template emplace<conv2d>(channels, 3);
        net.template emplace<relu>();
        net.template emplace<maxpool2d>(2);
    }
    net.template emplace<flatten>();
    net.template emplace<dense>(widths.dense_units);
    net.template emplace<relu>();
    net.template emplace<dropout>(0.5);
    net.template emplace<dense>(widths.dense_units);
    net.template emplace<relu>();
    net.template emplace<dense>(classes);
    return net;
}

// Names accepted by build_architecture(), for help texts and error messages.
inline const std::vector<std::string>& architecture_names() {
    static const std::vector<std::string> names = {"paper-mnist", "paper-cifar10"};
    return names;
}

// The paper's network by name: "paper-mnist" or "paper-cifar10".
template <class T>
sequential<T> build_architecture(std::string_view name) {
    if (name == "paper-mnist") return build_paper_net<T>(shape{1, 28, 28}, {32, 64, 200}, 10);
    if (name == "paper-cifar10") return build_paper_net<T>(shape{3, 32, 32}, {64, 128, 256}, 10);
    throw argument_error("unknown architecture '" + std::string(name) + "': expected paper-mnist or paper-cifar10");
}

}  // namespace nnmark
