#include "nnmark/core/parallel.hpp"

#include "../support/threads.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

using namespace nnmark;

namespace {

// What share_chunks did: how often each index was visited, and whether every call had
// a slot below the thread count and a chunk of the near-equal split.
struct visits {
    std::vector<std::atomic<int>> count;
    std::atomic<bool> slots_in_range{true}, chunks_as_split{true};

    explicit visits(index_t n) : count(static_cast<std::size_t>(n)) {}
    bool each_once() const {
        for (const auto& c : count)
            if (c.load() != 1) return false;
        return true;
    }
};

void share_and_record(index_t count, index_t chunks, int threads, visits& seen) {
    share_chunks(count, chunks, threads, [&](int slot, index_t first, index_t last) {
        if (slot < 0 || slot >= threads) seen.slots_in_range = false;
        bool split = false;  // [first, last) must be one of the chunks
        for (index_t c = 0; c < chunks; ++c)
            split = split || (chunk_of(count, static_cast<int>(c), static_cast<int>(chunks)).first == first &&
                              chunk_of(count, static_cast<int>(c), static_cast<int>(chunks)).last == last);
        if (!split) seen.chunks_as_split = false;
        for (index_t i = first; i < last; ++i) ++seen.count[static_cast<std::size_t>(i)];
    });
}

}  // namespace

TEST_CASE("chunk_of: near-equal contiguous chunks that cover the range") {
    for (index_t count : {0, 1, 5, 16})
        for (int chunks : {1, 2, 3, 7}) {
            index_t next = 0;
            for (int c = 0; c < chunks; ++c) {
                const index_range r = chunk_of(count, c, chunks);
                CHECK(r.first == next);
                CHECK(r.size() >= count / chunks);
                CHECK(r.size() <= count / chunks + 1);
                next = r.last;
            }
            CHECK(next == count);
        }
}

TEST_CASE("share_chunks: every index once, in the chunks of the split, on slots below the thread count") {
    testing::thread_count_guard guard;
    set_threads(2);
    for (int threads : {1, 2})
        for (index_t count : {1, 2, 7, 1000})
            for (index_t chunks : {1, 2, 8, 100}) {  // 100: more chunks than indices, some empty
                CAPTURE(threads);
                CAPTURE(count);
                CAPTURE(chunks);
                for (int round = 0; round < 20; ++round) {  // helpers asleep and awake
                    visits seen(count);
                    share_and_record(count, chunks, threads, seen);
                    CHECK(seen.each_once());
                    CHECK(seen.slots_in_range.load());
                    CHECK(seen.chunks_as_split.load());
                }
            }
}

TEST_CASE("share_chunks: work inside a chunk runs on its thread, and callers on several threads all finish") {
    testing::thread_count_guard guard;
    set_threads(2);
    // Inside a chunk threads_for is 1, and a nested call runs on the chunk's thread.
    std::atomic<bool> nested_alone{true};
    share_chunks(4, 4, 2, [&](int, index_t, index_t) {
        if (threads_for(1LL << 40, 1) != 1) nested_alone = false;
        share_chunks(3, 3, 2, [&](int slot, index_t, index_t) {
            if (slot != 0) nested_alone = false;
        });
    });
    CHECK(nested_alone.load());

    // Two callers at once (two threads serving queries): one has the helpers, the other
    // runs its chunks alone; each gets all of its work done.
    std::atomic<int> complete_rounds{0};
    std::vector<std::thread> callers;
    for (int c = 0; c < 2; ++c)
        callers.emplace_back([&] {
            for (int round = 0; round < 50; ++round) {
                visits once(500);
                share_and_record(500, 10, 2, once);
                if (once.each_once() && once.slots_in_range.load()) ++complete_rounds;
            }
        });
    for (auto& t : callers) t.join();
    CHECK(complete_rounds.load() == 100);
}
