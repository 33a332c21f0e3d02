// shape: the extents of a tensor, outermost first, at most four of them.
//
// nnmark stores images as NCHW (batch, channels, height, width). Why NCHW and not
// NHWC: convolution is lowered to one GEMM per image, W[Cout x Cin*k*k] times the
// unrolled input [Cin*k*k x H*W], and in NCHW each input channel is one contiguous
// plane, so the unrolling (im2col) reads whole rows; and it is PyTorch's layout, so
// weights (OIHW) and activations compare with the PyTorch oracle without transposes.
#pragma once

#include "nnmark/core/error.hpp"

#include <array>
#include <cstddef>
#include <initializer_list>
#include <string>

namespace nnmark {

// Signed so that index arithmetic (i - pad, h * stride - 1) never wraps around.
using index_t = std::ptrdiff_t;

class shape {
public:
    static constexpr int max_rank = 4;

    shape() = default;
    shape(std::initializer_list<index_t> extents) {
        if (extents.size() > static_cast<std::size_t>(max_rank))
            throw shape_error("shape: at most 4 dimensions are supported, got " +
                              std::to_string(extents.size()));
        for (index_t e : extents) push_back(e);
    }

    void push_back(index_t extent) {
        if (rank_ == max_rank) throw shape_error("shape: cannot add a fifth dimension to " + str());
        if (extent < 0) throw shape_error("shape: negative extent " + std::to_string(extent));
        dims_[static_cast<std::size_t>(rank_++)] = extent;
    }

    int rank() const { return rank_; }
    index_t operator[](int axis) const { return dims_[static_cast<std::size_t>(check_axis(axis))]; }
    index_t& operator[](int axis) { return dims_[static_cast<std::size_t>(check_axis(axis))]; }

    // Number of elements; the empty shape (rank 0) holds one scalar.
    index_t count() const {
        index_t n = 1;
        for (int a = 0; a < rank_; ++a) n *= dims_[static_cast<std::size_t>(a)];
        return n;
    }

    // Elements of one item of the outermost axis (one image of a batch).
    index_t item_count() const {
        index_t n = 1;
        for (int a = 1; a < rank_; ++a) n *= dims_[static_cast<std::size_t>(a)];
        return n;
    }

    // The same shape without its outermost (batch) axis.
    shape drop_front() const {
        shape s;
        for (int a = 1; a < rank_; ++a) s.push_back(dims_[static_cast<std::size_t>(a)]);
        return s;
    }

    // The same shape with `extent` put in front, e.g. a batch size.
    shape prepend(index_t extent) const {
        shape s;
        s.push_back(extent);
        for (int a = 0; a < rank_; ++a) s.push_back(dims_[static_cast<std::size_t>(a)]);
        return s;
    }

    friend bool operator==(const shape& a, const shape& b) {
        if (a.rank_ != b.rank_) return false;
        for (int i = 0; i < a.rank_; ++i)
            if (a.dims_[static_cast<std::size_t>(i)] != b.dims_[static_cast<std::size_t>(i)]) return false;
        return true;
    }

    // "[128, 1, 28, 28]": the form used in every error message.
    std::string str() const {
        std::string s = "[";
        for (int a = 0; a < rank_; ++a) {
            if (a) s += ", ";
            s += std::to_string(dims_[static_cast<std::size_t>(a)]);
        }
        return s + "]";
    }

private:
    int check_axis(int axis) const {
        if (axis < 0 || axis >= rank_)
            throw shape_error("shape: axis " + std::to_string(axis) + " out of range for " + str());
        return axis;
    }

    std::array<index_t, max_rank> dims_{};
    int rank_ = 0;
};

}  // namespace nnmark
