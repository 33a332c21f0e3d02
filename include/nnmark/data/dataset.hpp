// dataset: labelled images held in memory as bytes, and the views training needs.
//
// Contract:
// - images is [N, C, H, W] (NCHW, see core/shape.hpp), uint8, exactly as stored in the
//   files (MNIST [N, 1, 28, 28], CIFAR-10 [N, 3, 32, 32]); labels[i] in [0, classes)
//   is the class of image i. Images stay bytes until a batch is formed, so a whole
//   training set costs one byte per pixel instead of four.
// - subset / filter_by_label / split copy the selected items into a new dataset; the
//   result keeps classes and says in its name where it came from.
// - to_float(data, indices, batch) writes the selected images as T in [0, 1] (x / 255,
//   the same division as PyTorch's ToTensor, so inputs match the oracle bit for bit)
//   into batch [n, C, H, W]; it reuses batch's allocation when the shape is unchanged.
// Index errors throw argument_error naming the index and the dataset.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/shape.hpp"
#include "nnmark/core/tensor.hpp"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nnmark {

struct dataset {
    tensor<std::uint8_t> images;  // [N, C, H, W]
    std::vector<int> labels;      // N entries in [0, classes)
    int classes = 10;
    std::string name;

    index_t size() const { return static_cast<index_t>(labels.size()); }

    // Shape of one image, [C, H, W].
    shape item_shape() const { return images.shape().drop_front(); }

    // The items at `indices`, in that order (repeats allowed).
    dataset subset(std::span<const index_t> indices) const {
        dataset out;
        out.images.resize(item_shape().prepend(static_cast<index_t>(indices.size())));
        out.classes = classes;
        out.name = name + "[subset]";
        out.labels.reserve(indices.size());
        for (std::size_t k = 0; k < indices.size(); ++k) {
            const index_t i = checked_index(indices[k]);
            std::ranges::copy(images.item(i), out.images.item(static_cast<index_t>(k)).begin());
            out.labels.push_back(labels[static_cast<std::size_t>(i)]);
        }
        return out;
    }

    // The items whose label is `label`, in their original order.
    dataset filter_by_label(int label) const {
        std::vector<index_t> chosen;
        for (index_t i = 0; i < size(); ++i)
            if (labels[static_cast<std::size_t>(i)] == label) chosen.push_back(i);
        dataset out = subset(chosen);
        out.name = name + "[label " + std::to_string(label) + "]";
        return out;
    }

    // The first `first_count` items and the rest, e.g. the part of a training set an
    // attacker holds and the part only the owner holds. Shuffle with subset() first
    // when the split must not follow the file order.
    std::pair<dataset, dataset> split(index_t first_count) const {
        if (first_count < 0 || first_count > size())
            throw argument_error("dataset::split: cannot take the first " + std::to_string(first_count) + " of the " +
                                 std::to_string(size()) + " items of '" + name + "'");
        std::vector<index_t> order(static_cast<std::size_t>(size()));
        std::iota(order.begin(), order.end(), index_t{0});
        const auto cut = order.begin() + first_count;
        std::pair<dataset, dataset> parts{subset({order.begin(), cut}), subset({cut, order.end()})};
        parts.first.name = name + "[:" + std::to_string(first_count) + "]";
        parts.second.name = name + "[" + std::to_string(first_count) + ":]";
        return parts;
    }

    // How many items each class has (classes entries).
    std::vector<index_t> label_counts() const {
        check_labels("dataset::label_counts");
        std::vector<index_t> counts(static_cast<std::size_t>(classes), 0);
        for (int label : labels) ++counts[static_cast<std::size_t>(label)];
        return counts;
    }

    // Throws unless images is [N, C, H, W] with N == labels.size() and every label is in
    // [0, classes): for datasets built by hand (tests, triggers) before they are used.
    void validate(std::string_view where) const {
        if (images.shape().rank() != 4 || images.shape()[0] != size())
            throw shape_error(std::string(where) + ": dataset '" + name + "': expected images [" +
                              std::to_string(size()) + ", C, H, W] for " + std::to_string(size()) + " labels, got " +
                              images.shape().str());
        check_labels(where);
    }

    // Throws argument_error naming the first label outside [0, classes).
    void check_labels(std::string_view where) const {
        for (std::size_t i = 0; i < labels.size(); ++i)
            if (labels[i] < 0 || labels[i] >= classes)
                throw argument_error(std::string(where) + ": dataset '" + name + "': label " +
                                     std::to_string(labels[i]) + " of item " + std::to_string(i) + " is outside 0.." +
                                     std::to_string(classes - 1));
    }

    // Throws argument_error unless 0 <= i < size().
    index_t checked_index(index_t i) const {
        if (i < 0 || i >= size())
            throw argument_error("dataset '" + name + "': index " + std::to_string(i) + " is outside 0.." +
                                 std::to_string(size() - 1));
        return i;
    }
};

namespace detail {
// One image from bytes to T in [0, 1].
template <class T>
void bytes_to_unit(std::span<const std::uint8_t> image, T* out) {
    const std::size_t n = image.size();
    for (std::size_t k = 0; k < n; ++k) out[k] = static_cast<T>(image[k]) / T(255);
}
}  // namespace detail

// batch = images[indices] / 255 as [indices.size(), C, H, W].
template <class T>
void to_float(const dataset& data, std::span<const index_t> indices, tensor<T>& batch) {
    batch.resize(data.item_shape().prepend(static_cast<index_t>(indices.size())));
    for (std::size_t k = 0; k < indices.size(); ++k)
        detail::bytes_to_unit(data.images.item(data.checked_index(indices[k])),
                              batch.item(static_cast<index_t>(k)).data());
}

// `count` (at most `size`) indices spread evenly over [0, size), every size / count-th:
// a sample of a file sorted by class still holds every class.
inline std::vector<index_t> evenly_spaced_indices(index_t size, index_t count) {
    count = std::min(count, size);
    std::vector<index_t> out(static_cast<std::size_t>(std::max<index_t>(count, 0)));
    for (index_t i = 0; i < count; ++i) out[static_cast<std::size_t>(i)] = i * size / count;
    return out;
}

// out = labels[indices], reusing out's allocation.
inline void gather_labels(const dataset& data, std::span<const index_t> indices, std::vector<int>& out) {
    out.clear();
    for (index_t i : indices) out.push_back(data.labels[static_cast<std::size_t>(data.checked_index(i))]);
}

}  // namespace nnmark
