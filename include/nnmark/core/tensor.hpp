// tensor<T>: a shape and one contiguous, 64-byte aligned block of T.
//
// Contract:
// - Storage is dense and row-major over the shape (NCHW for images, see shape.hpp);
//   a batch is one tensor whose outermost axis is the batch, never a vector of images.
// - resize() keeps the allocation when the new shape fits in it, so a training loop
//   that sees the same batch shape every step allocates nothing after the first step.
// - T is a template parameter so that every layer can run in double precision for
//   the numerical gradient tests and in float for training.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/shape.hpp"

#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <span>
#include <string_view>
#include <vector>

namespace nnmark {

// Alignment of every tensor's first element: one AVX-512 register (and a cache line).
inline constexpr std::size_t tensor_alignment = 64;

template <class T>
using aligned_vector = std::vector<T, xsimd::aligned_allocator<T, tensor_alignment>>;

template <class T>
class tensor {
public:
    using value_type = T;

    tensor() = default;
    explicit tensor(const shape& s, T fill = T(0))
        : shape_(s), count_(s.count()), data_(static_cast<std::size_t>(count_), fill) {}

    const nnmark::shape& shape() const { return shape_; }
    index_t size() const { return count_; }
    bool empty() const { return count_ == 0; }
    index_t batch() const { return shape_.rank() ? shape_[0] : 1; }

    T* data() { return data_.data(); }
    const T* data() const { return data_.data(); }
    std::span<T> span() { return {data_.data(), static_cast<std::size_t>(count_)}; }
    std::span<const T> span() const { return {data_.data(), static_cast<std::size_t>(count_)}; }

    T& operator[](index_t i) { return data_[static_cast<std::size_t>(i)]; }
    const T& operator[](index_t i) const { return data_[static_cast<std::size_t>(i)]; }

    // Element (n, c, h, w) of a rank-4 tensor; unchecked, for reference loops.
    T& at(index_t n, index_t c, index_t h, index_t w) { return data_[offset(n, c, h, w)]; }
    const T& at(index_t n, index_t c, index_t h, index_t w) const { return data_[offset(n, c, h, w)]; }

    // One item of the outermost axis, e.g. one image of a batch.
    std::span<T> item(index_t n) {
        const index_t k = shape_.item_count();
        return {data_.data() + n * k, static_cast<std::size_t>(k)};
    }
    std::span<const T> item(index_t n) const {
        const index_t k = shape_.item_count();
        return {data_.data() + n * k, static_cast<std::size_t>(k)};
    }

    // Give the tensor a new shape; contents are unspecified afterwards. The storage only
    // grows: a buffer that serves layers of different sizes in turn (the ping-pong
    // buffers of inference and backward) neither reallocates nor zero-fills the part it
    // grows back into, which std::vector::resize would do on every growth.
    void resize(const nnmark::shape& s) {
        shape_ = s;
        count_ = s.count();
        if (data_.size() < static_cast<std::size_t>(count_)) data_.resize(static_cast<std::size_t>(count_));
    }

    // Becomes a copy of `other` in its own storage, which only grows (see resize):
    // unlike assignment, which gives the storage other's size, so that a later resize
    // back up zero-fills the difference, every time.
    void assign(const tensor& other) {
        resize(other.shape());
        std::copy(other.data(), other.data() + other.size(), data());
    }

    // Same elements, another shape of the same count (flatten, unflatten).
    void reshape(const nnmark::shape& s) {
        if (s.count() != shape_.count())
            throw shape_error("tensor::reshape: cannot view " + shape_.str() + " as " + s.str());
        shape_ = s;
    }

    void fill(T value) { std::fill_n(data_.begin(), count_, value); }

private:
    std::size_t offset(index_t n, index_t c, index_t h, index_t w) const {
        return static_cast<std::size_t>(((n * shape_[1] + c) * shape_[2] + h) * shape_[3] + w);
    }

    nnmark::shape shape_;
    index_t count_ = 0;       // elements of shape_, the tensor's size
    aligned_vector<T> data_;  // at least count_ elements
};

// Throws shape_error naming `where` unless `t` has exactly shape `expected`.
template <class T>
void expect_shape(const tensor<T>& t, const shape& expected, std::string_view where) {
    if (!(t.shape() == expected))
        throw shape_error(std::string(where) + ": expected shape " + expected.str() + ", got " + t.shape().str());
}

}  // namespace nnmark
