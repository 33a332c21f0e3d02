// workspace<T>: scratch memory handed to layers by their caller.
//
// Layers never allocate scratch inside forward or backward: they ask the workspace,
// which grows to the largest request it has seen and then stays put, so a steady
// training loop allocates nothing. Each thread of a server owns its own workspace,
// which is what lets a const model run inference on many threads at once.
//
// A layer that runs other layers inside it (layers/residual.hpp) hands them nested():
// a tensor for their intermediate outputs and a workspace one level down, so that the
// inner layers' scratch (and a block inside the block) never meets the outer one's.
#pragma once

#include "nnmark/core/tensor.hpp"

#include <array>
#include <memory>
#include <span>

namespace nnmark {

template <class T>
struct nested_workspace;

template <class T>
class workspace {
public:
    // Separate buffers so that one layer can hold several scratch areas at once.
    static constexpr int slots = 4;

    // At least `count` elements of scratch in buffer `slot`; contents unspecified.
    std::span<T> get(index_t count, int slot = 0) {
        auto& buffer = buffers_.at(static_cast<std::size_t>(slot));
        if (static_cast<index_t>(buffer.size()) < count) buffer.resize(static_cast<std::size_t>(count));
        return {buffer.data(), static_cast<std::size_t>(count)};
    }

    // The next level down, made on first use and kept, like the buffers.
    nested_workspace<T>& nested() {
        if (!nested_) nested_ = std::make_unique<nested_workspace<T>>();
        return *nested_;
    }

private:
    std::array<aligned_vector<T>, slots> buffers_;
    std::unique_ptr<nested_workspace<T>> nested_;
};

template <class T>
struct nested_workspace {
    tensor<T> buffer;      // the inner layers' outputs
    workspace<T> scratch;  // what the inner layers are given
};

}  // namespace nnmark
