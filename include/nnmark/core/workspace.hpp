// workspace<T>: scratch memory handed to layers by their caller.
//
// Layers never allocate scratch inside forward or backward: they ask the workspace,
// which grows to the largest request it has seen and then stays put, so a steady
// training loop allocates nothing. Each thread of a server owns its own workspace,
// which is what lets a const model run inference on many threads at once.
#pragma once

#include "nnmark/core/tensor.hpp"

#include <array>
#include <span>

namespace nnmark {

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

private:
    std::array<aligned_vector<T>, slots> buffers_;
};

}  // namespace nnmark
