// memory_budget: the overflow-checked products and sums every size check rests on, and
// the available-memory reading they are compared with.
#include "nnmark/core/memory_budget.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <vector>

using namespace nnmark;

TEST_CASE("memory_budget: checked products and sums report overflow instead of wrapping") {
    const std::vector<std::int64_t> small{3, 5, 7};
    CHECK(checked_product(small) == std::uint64_t{105});
    const std::vector<std::int64_t> huge{std::int64_t{1} << 40, std::int64_t{1} << 40};
    CHECK_FALSE(checked_product(huge).has_value());
    CHECK(checked_sum(2, 3) == std::uint64_t{5});
    CHECK_FALSE(checked_sum(std::numeric_limits<std::uint64_t>::max(), 1).has_value());
    CHECK(available_memory_bytes() > 0);
}
