// parallel: the thread count nnmark uses, and the rule for when to use more than one.
//
// tiny-dnn silently ignored thread counts; here set_threads() is honoured by every
// parallel region in the engine (they all ask threads_for()), and asking for more
// threads than OpenMP can give is an error rather than a silent downgrade.
//
// Two ways to share work: for_each_chunk, an OpenMP region with a static split (each
// thread one chunk, known in advance: training's shards and per-block partial sums
// depend on it), and share_chunks, for work that must not wait for a late thread
// (below).
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/shape.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>
#include <thread>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace nnmark {

namespace detail {
inline int& configured_threads() {
    static int threads = 0;  // 0: not set, use OpenMP's default
    return threads;
}
}  // namespace detail

// Threads available to this process (OpenMP's default, 1 without OpenMP).
inline int hardware_threads() {
#if defined(_OPENMP)
    return omp_get_num_procs();
#else
    return 1;
#endif
}

// Use `n` threads in every parallel region from now on (n >= 1).
inline void set_threads(int n) {
    if (n < 1) throw argument_error("set_threads: expected at least 1 thread, got " + std::to_string(n));
#if !defined(_OPENMP)
    if (n > 1)
        throw argument_error("set_threads: " + std::to_string(n) +
                             " threads requested but nnmark was built without OpenMP");
#else
    omp_set_num_threads(n);
#endif
    detail::configured_threads() = n;
}

// Threads in use: the value given to set_threads, else OpenMP's default.
inline int thread_count() {
    if (detail::configured_threads() > 0) return detail::configured_threads();
#if defined(_OPENMP)
    return std::max(1, omp_get_max_threads());
#else
    return 1;
#endif
}

namespace detail {
// Whether the calling thread is running a chunk of share_chunks (always, on its helpers).
inline bool& in_shared_chunk() {
    thread_local bool inside = false;
    return inside;
}
}  // namespace detail

// How many threads a region with `work` units of work should use: one thread per
// `grain` units at least, so a small layer does not pay to wake threads. Inside a
// parallel region, or a chunk of share_chunks, the answer is 1: nnmark parallelizes at
// one level, and work called from a region (a shard of data-parallel training,
// train/data_parallel.hpp) runs on the thread that called it.
inline int threads_for(long long work, long long grain) {
#if defined(_OPENMP)
    if (omp_in_parallel()) return 1;
#endif
    if (detail::in_shared_chunk()) return 1;
    const long long wanted = grain > 0 ? work / grain : work;
    return static_cast<int>(std::clamp<long long>(wanted, 1, thread_count()));
}

// A half-open range [first, last) of indices.
struct index_range {
    index_t first, last;
    index_t size() const { return last - first; }
};

// Chunk `chunk` of `chunks` contiguous, near-equal chunks of [0, count).
inline index_range chunk_of(index_t count, int chunk, int chunks) {
    return {count * chunk / chunks, count * (chunk + 1) / chunks};
}

namespace detail {
template <class Body>
void run_chunk(Body& body, index_t count, int chunk, int chunks) {
    const index_range range = chunk_of(count, chunk, chunks);
    body(chunk, range.first, range.last);
}
}  // namespace detail

// Runs body(chunk, begin, end) for `chunks` contiguous, near-equal chunks of
// [0, count) (chunk_of), one OpenMP iteration (and so one thread) per chunk. The split
// depends only on `chunks`, never on scheduling. One chunk runs on the calling thread
// without entering an OpenMP region, so a region nested in the body may still go
// parallel.
template <class Body>
void for_each_chunk(index_t count, int chunks, Body&& body) {
    if (chunks <= 1) return body(0, index_t(0), count);
#pragma omp parallel for schedule(static) num_threads(chunks)
    for (int c = 0; c < chunks; ++c) detail::run_chunk(body, count, c, chunks);
}

namespace detail {

// The helper threads of share_chunks, and the job they take chunks of.
//
// Why not OpenMP: a region ends at a barrier, so every thread of the team waits for
// the slowest. On a machine shared with other work (the project's has two cores, and
// the kernel's autogroups give each session its share whatever the nice values), a
// thread often waits milliseconds for its core: batch-1 inference of paper-mnist,
// about 15 parallel steps of a few microseconds, ran at 7 images/s on two threads with
// OpenMP regions against 5,700 on one. Here the caller takes chunks too and waits only
// for chunks a helper has begun: a helper that is not running (or not there, in a
// child after fork) leaves its share to the caller, so two threads are never much
// slower than one.
//
// Each slot owns a contiguous block of the chunks (chunk_of(chunks, slot, threads))
// and takes them first, in order; a slot that has run out takes what is left of the
// others' blocks. So while every thread keeps up, a thread computes the same part of
// every step, and the outputs it writes stay in its core's cache from one step to the
// next (taken as they came, a part's outputs moved between the cores at every step:
// paper-mnist's first layer ran slower on two threads than on one).
//
// The job is an atomic word, [generation:32][threads:8][chunks:24], and each block's
// next chunk an atomic word [generation:32][next:32]: a chunk is claimed by a
// compare-exchange that moves `next` on within the job's generation, so a helper that
// wakes late cannot claim a chunk of a job that is over. The job's body is read only
// after a claim, while the caller still waits for that chunk. The pool serves one
// caller at a time; a second caller meanwhile (another thread serving queries) runs
// its chunks alone.
class chunk_pool {
public:
    static constexpr index_t max_chunks = (1 << 24) - 1;
    static constexpr int max_threads = 64;

    // Never destroyed: helpers may be waiting for work when the program exits.
    static chunk_pool& instance() {
        static chunk_pool* pool = new chunk_pool;
        return *pool;
    }

    // Runs body(slot, chunk) for chunk in [0, chunks) on the caller (slot 0) and up to
    // threads - 1 helpers (slots 1...); false, with nothing run, if the pool is busy.
    template <class Body>
    bool run(index_t chunks, int threads, Body& body) {
        if (busy_.exchange(true, std::memory_order_acquire)) return false;
        try {
            while (helpers_ < threads - 1) std::thread([this, slot = helpers_ + 1] { serve(slot); }).detach(), ++helpers_;
        } catch (const std::system_error&) {  // no more threads: the other slots' chunks fall to those there are
        }
        run_chunk_ = [](void* b, int slot, index_t chunk) { (*static_cast<Body*>(b))(slot, chunk); };
        body_ = &body;
        done_.store(0, std::memory_order_relaxed);
        const std::uint64_t generation = (job_.load(std::memory_order_relaxed) >> 32) + 1;
        for (int s = 0; s < threads; ++s) blocks_[s].next.store(generation << 32, std::memory_order_relaxed);
        job_.store(generation << 32 | static_cast<std::uint64_t>(threads) << 24 | static_cast<std::uint64_t>(chunks),
                   std::memory_order_seq_cst);
        wake_.fetch_add(1, std::memory_order_seq_cst);
        wake_.notify_all();
        take_chunks(0);
        while (done_.load(std::memory_order_acquire) < chunks) spin_once();
        busy_.store(false, std::memory_order_release);
        return true;
    }

private:
    static void spin_once() {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }

    // Runs the chunks of the current job that `slot` can claim: its own block's, then
    // what is left of the other blocks (the next slot's first).
    void take_chunks(int slot) {
        const std::uint64_t job = job_.load(std::memory_order_acquire);
        const std::uint64_t generation = job >> 32;
        const auto threads = static_cast<int>(job >> 24 & 0xff);
        const auto chunks = static_cast<index_t>(job & 0xffffff);
        if (slot >= threads) return;
        for (int k = 0; k < threads; ++k) {
            const int owner = (slot + k) % threads;
            const index_range block = chunk_of(chunks, owner, threads);
            std::atomic<std::uint64_t>& next = blocks_[owner].next;
            std::uint64_t claim = next.load(std::memory_order_acquire);
            for (;;) {
                const auto taken = static_cast<index_t>(claim & 0xffffffff);
                if (claim >> 32 != generation || block.first + taken >= block.last) break;
                if (!next.compare_exchange_weak(claim, claim + 1, std::memory_order_acq_rel, std::memory_order_acquire))
                    continue;
                run_chunk_(body_, slot, block.first + taken);
                done_.fetch_add(1, std::memory_order_release);
                claim = next.load(std::memory_order_acquire);
            }
        }
    }

    // A helper: takes chunks whenever a job comes; between jobs it spins for a while
    // (batch-1 inference starts one every few microseconds), then sleeps.
    [[noreturn]] void serve(int slot) {
        in_shared_chunk() = true;
        for (;;) {
            take_chunks(slot);
            const std::uint64_t seen = job_.load(std::memory_order_acquire);
            // One pause between looks (a pause takes some 30 ns on Zen 3: more between looks
            // and each step would start that much later on the helper); the clock read
            // once in 256 looks.
            const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
            for (unsigned looks = 1; job_.load(std::memory_order_acquire) == seen; ++looks) {
                spin_once();
                if (looks % 256 != 0 || std::chrono::steady_clock::now() < until) continue;
                const int asleep_at = wake_.load(std::memory_order_seq_cst);
                if (job_.load(std::memory_order_seq_cst) == seen) wake_.wait(asleep_at, std::memory_order_seq_cst);
            }
        }
    }

    // A block's next chunk, on a cache line of its own: its owner claims it at every
    // chunk, and should not slow the others' claims.
    struct alignas(64) block_claims {
        std::atomic<std::uint64_t> next{0};
    };

    std::atomic<std::uint64_t> job_{0};
    block_claims blocks_[max_threads];
    std::atomic<index_t> done_{0};
    std::atomic<int> wake_{0};
    std::atomic<bool> busy_{false};
    int helpers_ = 0;  // changed only by the caller that holds busy_
    void (*run_chunk_)(void*, int, index_t) = nullptr;
    void* body_ = nullptr;
};

}  // namespace detail

// Runs body(slot, first, last) for contiguous, near-equal chunks of [0, count),
// `chunks` of them (at most chunk_pool::max_chunks), on up to `threads` threads: the
// calling thread and helpers that take chunks as they come (detail::chunk_pool), so
// that a thread whose core is busy elsewhere delays nobody. Which thread takes which
// chunk varies from run to run: body must compute the same whichever runs it; `slot`
// (0 to threads - 1, at most chunk_pool::max_threads) names the thread, never two at
// once, for scratch of its own.
// Work that a chunk calls runs on its thread (threads_for is 1 there). body must not
// throw. One thread, or a pool that is serving another caller, runs every chunk on the
// calling thread.
template <class Body>
void share_chunks(index_t count, index_t chunks, int threads, Body&& body) {
    chunks = std::clamp<index_t>(chunks, 1, detail::chunk_pool::max_chunks);
    auto run = [&](int slot, index_t chunk) {
        const index_range range = chunk_of(count, static_cast<int>(chunk), static_cast<int>(chunks));
        if (range.size() > 0) body(slot, range.first, range.last);
    };
    bool& inside = detail::in_shared_chunk();
    if (threads > 1 && !inside) {
        inside = true;
        const int helped = std::min(threads, detail::chunk_pool::max_threads);
        const bool shared = detail::chunk_pool::instance().run(chunks, helped, run);
        inside = false;
        if (shared) return;
    }
    for (index_t chunk = 0; chunk < chunks; ++chunk) run(0, chunk);
}

// Index of the calling thread inside a parallel region (0 outside one).
inline int thread_index() {
#if defined(_OPENMP)
    return omp_get_thread_num();
#else
    return 0;
#endif
}

}  // namespace nnmark
