#include "nnmark/kernels/dot_gemm.hpp"
#include "nnmark/kernels/gemm.hpp"

#include "../support/threads.hpp"

// Eigen as a second reference, in its scalar code: a reference should not share the
// fast path's tricks (and Eigen 3.4's AVX-512 packet code warns under g++ 12).
#define EIGEN_DONT_VECTORIZE
#include <Eigen/Core>

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace nnmark;

namespace {

// A stored matrix with `pad` extra elements per row, so that ld > the minimum.
template <class T>
struct stored {
    index_t rows, cols, ld;
    std::vector<T> data;

    stored(index_t r, index_t c, index_t pad, std::mt19937& rng) : rows(r), cols(c), ld(c + pad) {
        std::uniform_real_distribution<double> uniform(-1.0, 1.0);
        data.resize(static_cast<std::size_t>(std::max<index_t>(1, rows * ld)));
        for (auto& x : data) x = static_cast<T>(uniform(rng));
    }
};

struct gemm_case {
    bool trans_a, trans_b;
    index_t m, n, k;
    double alpha, beta;

    std::string str() const {
        return "trans_a=" + std::to_string(trans_a) + " trans_b=" + std::to_string(trans_b) + " m=" + std::to_string(m) +
               " n=" + std::to_string(n) + " k=" + std::to_string(k) + " alpha=" + std::to_string(alpha) +
               " beta=" + std::to_string(beta);
    }
};

// The kernel under test: gemm, or dot_gemm (only for A * B^T: trans_a false, trans_b true).
enum class kernel { packed, dots };

// The exact-ish value of one element of alpha * op(A) op(B) + beta * C, summed in long
// double (64-bit significand: its own rounding is negligible next to T's), and the sum of
// the magnitudes of the terms, which bounds the rounding of any summation order.
struct exact_element {
    long double value = 0, magnitude = 0;
};

template <class T>
exact_element exact_product(const gemm_case& g, const stored<T>& a, const stored<T>& b, T start, index_t i, index_t j) {
    exact_element e;
    for (index_t p = 0; p < g.k; ++p) {
        const long double av = g.trans_a ? a.data[static_cast<std::size_t>(p * a.ld + i)]
                                         : a.data[static_cast<std::size_t>(i * a.ld + p)];
        const long double bv = g.trans_b ? b.data[static_cast<std::size_t>(j * b.ld + p)]
                                         : b.data[static_cast<std::size_t>(p * b.ld + j)];
        const long double term = static_cast<long double>(g.alpha) * av * bv;
        e.value += term;
        e.magnitude += std::abs(term);
    }
    if (g.beta != 0) {
        const long double term = static_cast<long double>(g.beta) * start;
        e.value += term;
        e.magnitude += std::abs(term);
    }
    return e;
}

// The forward error bound of a float summation of k + 1 products, scaled by alpha
// (Higham, Accuracy and Stability of Numerical Algorithms, 3.1): |computed - exact| <=
// gamma_(k+2) * sum |terms| with gamma_n ~ n * u and u = epsilon / 2 the unit roundoff
// (2^-24 for float). Any order of summation, with or without fused multiply-adds, stays
// inside it; twice that leaves room for the alpha and beta roundings. A dropped or doubled
// term of a typical element (|a b| ~ 1/4 for these draws against sum ~ k / 4) is about
// 1 / (k u) times larger than this bound: it fails.
template <class T>
double rounding_bound(index_t k, long double magnitude) {
    const double unit_roundoff = std::numeric_limits<T>::epsilon() / 2;
    return 2.0 * static_cast<double>(k + 2) * unit_roundoff * static_cast<double>(magnitude);
}

// Runs gemm (or dot_gemm) and gemm_reference on the same inputs and checks every element
// of C against the long-double value within rounding_bound, and that the padding between
// the rows of C is untouched. With beta == 0, C starts as NaN and must end without any.
template <class T>
void check_against_reference(const gemm_case& g, std::mt19937& rng, kernel under_test = kernel::packed) {
    CAPTURE(g.str());
    REQUIRE((under_test == kernel::packed || (!g.trans_a && g.trans_b)));
    const stored<T> a(g.trans_a ? g.k : g.m, g.trans_a ? g.m : g.k, 3, rng);
    const stored<T> b(g.trans_b ? g.n : g.k, g.trans_b ? g.k : g.n, 5, rng);
    stored<T> c(g.m, g.n, 2, rng);
    const T sentinel = T(12345);
    for (index_t i = 0; i < g.m; ++i)
        for (index_t j = g.n; j < c.ld; ++j) c.data[static_cast<std::size_t>(i * c.ld + j)] = sentinel;
    if (g.beta == 0)
        for (index_t i = 0; i < g.m; ++i)
            for (index_t j = 0; j < g.n; ++j)
                c.data[static_cast<std::size_t>(i * c.ld + j)] = std::numeric_limits<T>::quiet_NaN();

    const T alpha = static_cast<T>(g.alpha), beta = static_cast<T>(g.beta);
    std::vector<T> fast = c.data, reference = c.data;
    if (under_test == kernel::dots)
        dot_gemm(g.m, g.n, g.k, alpha, a.data.data(), a.ld, b.data.data(), b.ld, beta, fast.data(), c.ld);
    else
        gemm(g.trans_a, g.trans_b, g.m, g.n, g.k, alpha, a.data.data(), a.ld, b.data.data(), b.ld, beta, fast.data(), c.ld);
    gemm_reference(g.trans_a, g.trans_b, g.m, g.n, g.k, alpha, a.data.data(), a.ld, b.data.data(), b.ld, beta,
                   reference.data(), c.ld);

    int mismatches = 0;
    for (index_t i = 0; i < g.m; ++i) {
        for (index_t j = 0; j < c.ld; ++j) {
            const auto at = static_cast<std::size_t>(i * c.ld + j);
            if (j >= g.n) {
                if (fast[at] != sentinel || reference[at] != sentinel) ++mismatches;
                continue;
            }
            const exact_element want = exact_product(g, a, b, c.data[at], i, j);
            const double tolerance = rounding_bound<T>(g.k, want.magnitude);
            const double exact = static_cast<double>(want.value);
            const double got = fast[at], defined = reference[at];
            // Written as !(<=) so that a NaN fails too.
            if (!(std::abs(got - exact) <= tolerance) || !(std::abs(defined - exact) <= tolerance)) {
                if (mismatches < 3) {
                    CAPTURE(i);
                    CAPTURE(j);
                    CAPTURE(got);
                    CAPTURE(defined);
                    CAPTURE(exact);
                    CAPTURE(tolerance);
                    CHECK(std::abs(got - exact) <= tolerance);
                    CHECK(std::abs(defined - exact) <= tolerance);
                }
                ++mismatches;
            }
        }
    }
    CHECK(mismatches == 0);
}

// gemm against Eigen's product, a second reference written by others: both must lie
// within the rounding bound of the long-double value, so they may differ by twice it.
template <class T>
void check_against_eigen(const gemm_case& g, std::mt19937& rng) {
    CAPTURE(g.str());
    using matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using view = Eigen::Map<const matrix, 0, Eigen::OuterStride<>>;
    const stored<T> a(g.trans_a ? g.k : g.m, g.trans_a ? g.m : g.k, 3, rng);
    const stored<T> b(g.trans_b ? g.n : g.k, g.trans_b ? g.k : g.n, 5, rng);
    const stored<T> c(g.m, g.n, 2, rng);
    const view a_view(a.data.data(), a.rows, a.cols, Eigen::OuterStride<>(a.ld));
    const view b_view(b.data.data(), b.rows, b.cols, Eigen::OuterStride<>(b.ld));
    const view c_view(c.data.data(), c.rows, c.cols, Eigen::OuterStride<>(c.ld));
    const matrix op_a = g.trans_a ? matrix(a_view.transpose()) : matrix(a_view);
    const matrix op_b = g.trans_b ? matrix(b_view.transpose()) : matrix(b_view);
    const T alpha = static_cast<T>(g.alpha), beta = static_cast<T>(g.beta);
    const matrix by_eigen = alpha * (op_a * op_b) + beta * c_view;

    std::vector<T> fast = c.data;
    gemm(g.trans_a, g.trans_b, g.m, g.n, g.k, alpha, a.data.data(), a.ld, b.data.data(), b.ld, beta, fast.data(), c.ld);
    int mismatches = 0;
    for (index_t i = 0; i < g.m; ++i)
        for (index_t j = 0; j < g.n; ++j) {
            const auto at = static_cast<std::size_t>(i * c.ld + j);
            const double tolerance = 2 * rounding_bound<T>(g.k, exact_product(g, a, b, c.data[at], i, j).magnitude);
            if (!(std::abs(static_cast<double>(fast[at]) - static_cast<double>(by_eigen(i, j))) <= tolerance)) ++mismatches;
        }
    CHECK(mismatches == 0);
}

// alpha / beta combinations the engine uses: plain product, accumulation, scaling.
const gemm_case scalings[] = {{false, false, 0, 0, 0, 1.0, 0.0},
                              {false, false, 0, 0, 0, 1.0, 1.0},
                              {false, false, 0, 0, 0, -0.75, 0.5},
                              {false, false, 0, 0, 0, 2.0, 0.0}};

template <class T>
void check_odd_sizes() {
    std::mt19937 rng(2024);
    const index_t sizes[] = {1, 7, 33, 130};
    int variant = 0;
    for (const bool trans_a : {false, true})
        for (const bool trans_b : {false, true})
            for (const index_t m : sizes)
                for (const index_t n : sizes)
                    for (const index_t k : sizes) {
                        gemm_case g = scalings[variant++ % 4];
                        g.trans_a = trans_a;
                        g.trans_b = trans_b;
                        g.m = m;
                        g.n = n;
                        g.k = k;
                        check_against_reference<T>(g, rng);
                    }
}

// dot_gemm on the same odd sizes, plus rows longer than many registers.
template <class T>
void check_dot_products() {
    std::mt19937 rng(31);
    const index_t sizes[] = {1, 7, 33, 130};
    int variant = 0;
    for (const index_t m : sizes)
        for (const index_t n : sizes)
            for (const index_t k : {index_t(1), index_t(7), index_t(33), index_t(130), index_t(1001)}) {
                gemm_case g = scalings[variant++ % 4];
                g.trans_b = true;
                g.m = m;
                g.n = n;
                g.k = k;
                check_against_reference<T>(g, rng, kernel::dots);
            }
}

// Sizes that cross the blocking: several K blocks (beta applied once), several
// column blocks, the packed-A path (many column tiles), many row blocks.
template <class T>
void check_blocking_edges() {
    std::mt19937 rng(77);
    const gemm_case cases[] = {
        {false, false, 3, 17, 65, 1.0, 0.5},    {true, false, 17, 3, 130, 1.0, 1.0},
        {false, true, 65, 130, 17, -0.75, 0.5}, {true, true, 130, 65, 3, 2.0, 0.0},
        {false, false, 17, 65, 800, 1.0, 0.5},  {false, true, 33, 9, 777, 1.0, 1.0},
        {true, false, 7, 700, 33, 1.0, 0.0},    {false, false, 20, 530, 20, 0.5, 0.5},
        {true, true, 20, 530, 20, 1.0, 1.0},    {false, false, 4200, 3, 3, 1.0, 0.5},
        {true, false, 4200, 17, 3, 1.0, 0.0},
    };
    for (const auto& g : cases) check_against_reference<T>(g, rng);
}

template <class T>
std::vector<T> product_of_random(index_t m, index_t n, index_t k, bool trans_b) {
    std::mt19937 rng(5);
    const stored<T> a(m, k, 0, rng), b(trans_b ? n : k, trans_b ? k : n, 0, rng);
    std::vector<T> c(static_cast<std::size_t>(m * n), T(1));
    gemm(false, trans_b, m, n, k, T(1), a.data.data(), a.ld, b.data.data(), b.ld, T(0.5), c.data(), n);
    return c;
}

}  // namespace

TEST_CASE("gemm: float matches the reference on odd sizes, all transposes, alpha and beta") {
    check_odd_sizes<float>();
    check_blocking_edges<float>();
}

TEST_CASE("gemm: double matches the reference on odd sizes, all transposes, alpha and beta") {
    check_odd_sizes<double>();
    check_blocking_edges<double>();
}

TEST_CASE("gemm: float and double agree with Eigen on odd sizes and every transpose") {
    std::mt19937 rng(31);
    const index_t sizes[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 17, 65}, {100, 3, 257}, {129, 130, 131}, {40, 50, 400}};
    for (const auto& [m, n, k] : sizes)
        for (const bool trans_a : {false, true})
            for (const bool trans_b : {false, true}) {
                check_against_eigen<float>({trans_a, trans_b, m, n, k, -0.75, 0.5}, rng);
                check_against_eigen<double>({trans_a, trans_b, m, n, k, 1.0, 0.0}, rng);
            }
}

TEST_CASE("dot_gemm: float and double match the reference on odd sizes, alpha and beta") {
    check_dot_products<float>();
    check_dot_products<double>();
}

TEST_CASE("dot_gemm: a row alone gives bit-for-bit its row of the whole product, on 1 and 2 threads") {
    testing::thread_count_guard guard;
    std::mt19937 rng(8);
    // Large enough that the whole product is split over two threads.
    const index_t m = 150, n = 450, k = 1003;
    REQUIRE(static_cast<long long>(m) * n * k >= 2 * detail::packed_gemm::fmas_per_thread);
    const stored<float> a(m, k, 0, rng), b(n, k, 0, rng);
    auto product = [&](index_t rows, const float* a_rows) {
        std::vector<float> c(static_cast<std::size_t>(rows * n), 0.25f);
        dot_gemm(rows, n, k, 1.0f, a_rows, k, b.data.data(), k, 1.0f, c.data(), n);
        return c;
    };
    set_threads(1);
    const auto whole = product(m, a.data.data());
    for (index_t i : {index_t(0), index_t(3), m - 1}) {
        const auto row = product(1, a.data.data() + i * k);
        CHECK(std::equal(row.begin(), row.end(), whole.begin() + i * n));
    }
#if defined(_OPENMP)
    set_threads(2);
    CHECK(whole == product(m, a.data.data()));
#endif
}

TEST_CASE("gemm: k == 0 scales C by beta, and beta == 0 clears NaN") {
    std::vector<float> c = {1.f, 2.f, 3.f, std::nanf(""), 5.f, 6.f};
    const float none = 0.f;
    gemm(false, false, 2, 2, 0, 1.f, &none, 1, &none, 2, 0.5f, c.data(), 3);
    CHECK(c[0] == 0.5f);
    CHECK(c[1] == 1.f);
    CHECK(c[2] == 3.f);  // padding
    CHECK(std::isnan(c[3]));
    CHECK(c[4] == 2.5f);
    gemm(false, false, 2, 2, 0, 1.f, &none, 1, &none, 2, 0.f, c.data(), 3);
    CHECK(c[0] == 0.f);
    CHECK(c[3] == 0.f);
    CHECK(c[2] == 3.f);
}

TEST_CASE("gemm: the same inputs give bit-identical results, whatever the thread count") {
    testing::thread_count_guard guard;
    // Large enough that gemm splits the product over two threads.
    const long long two_threads = 2 * detail::packed_gemm::fmas_per_thread;
    REQUIRE(300LL * 330 * 700 >= two_threads);
    REQUIRE(250LL * 310 * 900 >= two_threads);
    set_threads(1);
    const auto first = product_of_random<float>(300, 330, 700, false);
    CHECK(first == product_of_random<float>(300, 330, 700, false));
    const auto first_t = product_of_random<double>(250, 310, 900, true);

#if defined(_OPENMP)
    set_threads(2);
    CHECK(first == product_of_random<float>(300, 330, 700, false));
    CHECK(first_t == product_of_random<double>(250, 310, 900, true));
    // Inside a parallel region gemm runs on the calling thread, with the same result.
    std::vector<float> inside;
#pragma omp parallel num_threads(2)
    {
#pragma omp single
        inside = product_of_random<float>(300, 330, 700, false);
    }
    CHECK(first == inside);
#endif
}
