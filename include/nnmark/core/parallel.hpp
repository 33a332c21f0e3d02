// parallel: the thread count nnmark uses, and the rule for when to use more than one.
//
// tiny-dnn silently ignored thread counts; here set_threads() is honoured by every
// OpenMP region in the engine (they all ask threads_for()), and asking for more
// threads than OpenMP can give is an error rather than a silent downgrade.
#pragma once

#include "nnmark/core/error.hpp"
#include "nnmark/core/shape.hpp"

#include <algorithm>
#include <string>

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

// How many threads a region with `work` units of work should use: one thread per
// `grain` units at least, so a small layer does not pay to wake threads. Inside a
// parallel region the answer is 1: nnmark parallelizes at one level, and work called
// from a region (a shard of data-parallel training, train/data_parallel.hpp) runs on
// the thread that called it.
inline int threads_for(long long work, long long grain) {
#if defined(_OPENMP)
    if (omp_in_parallel()) return 1;
#endif
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

// for_each_chunk(first_count, chunks, first), then, once all of it is done,
// for_each_chunk(second_count, chunks, second), in one parallel region: the threads
// meet at a barrier in between instead of ending one region and starting another (for
// a layer of one image, the weights a product reads are prepared in the first step).
template <class First, class Second>
void for_each_chunk_then(index_t first_count, index_t second_count, int chunks, First&& first, Second&& second) {
    if (chunks <= 1) {
        first(0, index_t(0), first_count);
        return second(0, index_t(0), second_count);
    }
#pragma omp parallel num_threads(chunks)
    {
#pragma omp for schedule(static)
        for (int c = 0; c < chunks; ++c) detail::run_chunk(first, first_count, c, chunks);
#pragma omp for schedule(static)
        for (int c = 0; c < chunks; ++c) detail::run_chunk(second, second_count, c, chunks);
    }
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
