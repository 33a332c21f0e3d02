// eigen_view: Eigen matrices that are views of nnmark's tensors and parameters.
//
// Why: whoever audits a model (its owner, or an expert looking at a suspected
// copy) wants linear algebra on its weights: norms, singular values, the rank of a
// layer, a unit's row zeroed to see what the model does without it. Eigen has that
// algebra and nnmark has the weights; an Eigen::Map lays the one over the other
// without a copy, so what is edited through the map is the model itself.
//
// The views are row-major like nnmark's storage: element (r, c) is element
// r * cols + c. Viewed by its shape, a tensor is its outermost axis by the rest: a
// dense weight [out, in] is the matrix of y = W x, a convolution weight [O, I, kH, kW]
// the O x (I kH kW) matrix its GEMM multiplies with, a bias [out] a column.
//
// Opt-in: the umbrella nnmark/nnmark.hpp does not include this header, because it is
// the only one that needs Eigen (3.3 or later), and the installed packages do not
// look for Eigen either. Code that includes it adds Eigen's include path itself
// (CMake: find_package(Eigen3) and link Eigen3::Eigen; pkg-config: eigen3).
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/shape.hpp"
#include "nnmark/core/tensor.hpp"

// Eigen 3.4's AVX and AVX-512 code has unused variables, which g++ reports under -Wall
// when Eigen's directory comes with -I (pkg-config eigen3) rather than as a system one.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-variable"
#include <Eigen/Core>
#pragma GCC diagnostic pop

#include <span>
#include <string>
#include <type_traits>

namespace nnmark {

template <class T>
using eigen_matrix = Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// A view of elements of type T; read-only when T is const.
template <class T>
using eigen_matrix_view = Eigen::Map<std::conditional_t<std::is_const_v<T>, const eigen_matrix<T>, eigen_matrix<T>>>;

// `elements` of shape `s` as its outermost axis by the rest (a rank-0 shape is 1 x 1),
// e.g. a parameter of sequential::named_parameters(): as_eigen_matrix(p.value, p.spec.shape).
template <class T>
eigen_matrix_view<T> as_eigen_matrix(std::span<T> elements, const shape& s) {
    if (static_cast<index_t>(elements.size()) != s.count())
        throw shape_error("as_eigen_matrix: expected " + std::to_string(s.count()) + " elements for shape " +
                          s.str() + ", found " + std::to_string(elements.size()));
    return {elements.data(), s.rank() ? s[0] : 1, s.item_count()};
}

template <class T>
eigen_matrix_view<T> as_eigen_matrix(tensor<T>& t) {
    return as_eigen_matrix(t.span(), t.shape());
}

template <class T>
eigen_matrix_view<const T> as_eigen_matrix(const tensor<T>& t) {
    return as_eigen_matrix(t.span(), t.shape());
}

// The tensor's elements as a rows x cols matrix: another grouping of the same
// elements, as tensor::reshape gives (a batch of images [N, C, H, W] as (N C H) x W).
template <class T>
eigen_matrix_view<T> as_eigen_matrix(tensor<T>& t, index_t rows, index_t cols) {
    return as_eigen_matrix(t.span(), shape{rows, cols});
}

template <class T>
eigen_matrix_view<const T> as_eigen_matrix(const tensor<T>& t, index_t rows, index_t cols) {
    return as_eigen_matrix(t.span(), shape{rows, cols});
}

}  // namespace nnmark
