// Snapshots of a model's parameters, for tests that check what an operation (an attack,
// an optimizer step) changed and what it left bit-identical.
#pragma once

#include "nnmark/model/sequential.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

namespace nnmark::testing {

// A copy of every parameter value of `net`, in buffer order.
template <class T>
std::vector<T> snapshot(const sequential<T>& net) {
    const auto p = net.parameters();
    return {p.begin(), p.end()};
}

// A copy of the values of parameter `name` ("7.weight") of `net`; empty if there is none.
template <class T>
std::vector<T> parameter_values(const sequential<T>& net, const std::string& name) {
    for (const auto& p : net.named_parameters())
        if (p.name == name) return {p.value.begin(), p.value.end()};
    return {};
}

// A copy of the parameters of layer `layer` of `net`, all tensors in buffer order.
template <class T>
std::vector<T> layer_values(const sequential<T>& net, int layer) {
    std::vector<T> out;
    for (const auto& p : net.named_parameters())
        if (p.layer == layer) out.insert(out.end(), p.value.begin(), p.value.end());
    return out;
}

template <class T>
bool bit_identical(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

}  // namespace nnmark::testing
