#include "nnmark/kernels/im2col.hpp"

#include "nnmark/core/rng.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace nnmark;

namespace {

// One unrolling problem: an image [channels, height, width] and the output size that
// a kernel, stride and top/left padding give (bottom/right padding is what remains).
struct geometry {
    index_t channels, height, width, kernel, stride, pad_top, pad_left, out_h, out_w;

    index_t image_count() const { return channels * height * width; }
    index_t column_count() const { return channels * kernel * kernel * out_h * out_w; }

    std::string str() const {
        // (std::string("C") rather than "C" + ...: the latter trips GCC 12's -Wrestrict)
        return std::string("C") + std::to_string(channels) + " H" + std::to_string(height) + " W" + std::to_string(width) + " k" +
               std::to_string(kernel) + " s" + std::to_string(stride) + " pad " + std::to_string(pad_top) + "," +
               std::to_string(pad_left) + " out " + std::to_string(out_h) + "x" + std::to_string(out_w);
    }
};

// Output size along an axis padded by pad_before and pad_after.
index_t outputs(index_t extent, index_t kernel, index_t stride, index_t pad_before, index_t pad_after) {
    return (extent + pad_before + pad_after - kernel) / stride + 1;
}

// Odd sizes, every stride, symmetric and asymmetric padding, padding wider than the
// image (a 1-pixel image under a 5-wide kernel), and kernels that do not fit unpadded.
std::vector<geometry> geometries() {
    std::vector<geometry> all;
    for (index_t channels : {1, 3})
        for (index_t height : {1, 4, 7})
            for (index_t width : {1, 5, 9})
                for (index_t kernel : {1, 2, 3, 5})
                    for (index_t stride : {1, 2, 3})
                        for (index_t pad_before : {0, 1, 2})
                            for (index_t pad_after : {0, 2}) {
                                if (height + pad_before + pad_after < kernel) continue;
                                if (width + pad_before + pad_after < kernel) continue;
                                all.push_back({channels, height, width, kernel, stride, pad_before, pad_after,
                                               outputs(height, kernel, stride, pad_before, pad_after),
                                               outputs(width, kernel, stride, pad_after, pad_before)});
                            }
    return all;
}

std::vector<double> random_values(index_t count, rng& random) {
    std::vector<double> v(static_cast<std::size_t>(count));
    for (auto& x : v) x = random.normal();
    return v;
}

}  // namespace

TEST_CASE("im2col: a hand-worked 1-channel example with padding") {
    // 3x3 image 1..9, kernel 2, stride 2, one pixel of padding on the top and left:
    // outputs 2x2; patch (0,0) sees only pixel 1 in its bottom-right corner.
    const std::vector<int> image = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    std::vector<int> columns(4 * 4, -1);
    im2col(image.data(), 1, 3, 3, 2, 2, 1, 1, 2, 2, columns.data());
    const std::vector<int> expected = {
        0, 0, 0, 5,   // (ki, kj) = (0, 0)
        0, 0, 4, 6,   // (0, 1)
        0, 2, 0, 8,   // (1, 0)
        1, 3, 7, 9};  // (1, 1)
    CHECK(columns == expected);
}

TEST_CASE("im2col: the fast path equals the reference on odd geometries") {
    rng random(11);
    for (const geometry& g : geometries()) {
        const auto image = random_values(g.image_count(), random);
        std::vector<double> fast(static_cast<std::size_t>(g.column_count()), 123.0);  // must all be overwritten
        std::vector<double> reference(fast.size(), -7.0);
        im2col(image.data(), g.channels, g.height, g.width, g.kernel, g.stride, g.pad_top, g.pad_left, g.out_h,
               g.out_w, fast.data());
        im2col_reference(image.data(), g.channels, g.height, g.width, g.kernel, g.stride, g.pad_top, g.pad_left,
                         g.out_h, g.out_w, reference.data());
        CHECK_MESSAGE(fast == reference, g.str());
    }
}

TEST_CASE("col2im: the fast path equals the reference and adds into the image") {
    rng random(12);
    for (const geometry& g : geometries()) {
        const auto columns = random_values(g.column_count(), random);
        const auto start = random_values(g.image_count(), random);
        auto fast = start;
        auto reference = start;
        col2im(columns.data(), g.channels, g.height, g.width, g.kernel, g.stride, g.pad_top, g.pad_left, g.out_h,
               g.out_w, fast.data());
        col2im_reference(columns.data(), g.channels, g.height, g.width, g.kernel, g.stride, g.pad_top, g.pad_left,
                         g.out_h, g.out_w, reference.data());
        REQUIRE(fast.size() == reference.size());
        for (std::size_t i = 0; i < fast.size(); ++i)
            CHECK_MESSAGE(fast[i] == doctest::Approx(reference[i]).epsilon(1e-12), g.str() << " pixel " << i);
    }
}

TEST_CASE("col2im is the adjoint of im2col: <im2col(x), c> == <x, col2im(c)>") {
    rng random(13);
    for (const geometry& g : geometries()) {
        const auto image = random_values(g.image_count(), random);
        const auto columns = random_values(g.column_count(), random);
        std::vector<double> unrolled(columns.size());
        im2col(image.data(), g.channels, g.height, g.width, g.kernel, g.stride, g.pad_top, g.pad_left, g.out_h,
               g.out_w, unrolled.data());
        std::vector<double> folded(image.size(), 0.0);
        col2im(columns.data(), g.channels, g.height, g.width, g.kernel, g.stride, g.pad_top, g.pad_left, g.out_h,
               g.out_w, folded.data());
        double lhs = 0, rhs = 0;
        for (std::size_t i = 0; i < columns.size(); ++i) lhs += unrolled[i] * columns[i];
        for (std::size_t i = 0; i < image.size(); ++i) rhs += image[i] * folded[i];
        CHECK_MESSAGE(lhs == doctest::Approx(rhs).epsilon(1e-10), g.str());
    }
}
