// memory_budget: how much memory a new allocation may take, and sizes computed without
// overflow, so that an absurd size (an architecture of 10^12 units, a file's claim) is
// refused with a message before anything is allocated instead of ending in bad_alloc.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>

#include <unistd.h>

namespace nnmark {

// Bytes the system can give this process now: MemAvailable of /proc/meminfo (memory
// free or reclaimable without swapping), else the available physical pages.
inline std::uint64_t available_memory_bytes() {
    if (std::FILE* f = std::fopen("/proc/meminfo", "r")) {
        char line[256];
        unsigned long long kib = 0;
        bool found = false;
        while (!found && std::fgets(line, sizeof line, f)) found = std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1;
        std::fclose(f);
        if (found) return static_cast<std::uint64_t>(kib) * 1024;
    }
    const long pages = ::sysconf(_SC_AVPHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page);
    return UINT64_MAX;  // unknown: no limit beyond overflow
}

// The product of `factors`, or nothing when it exceeds 2^64 - 1 (or a factor is negative).
inline std::optional<std::uint64_t> checked_product(std::span<const std::int64_t> factors) {
    std::uint64_t n = 1;
    for (const std::int64_t f : factors)
        if (f < 0 || __builtin_mul_overflow(n, static_cast<std::uint64_t>(f), &n)) return std::nullopt;
    return n;
}

// a + b, or nothing on overflow.
inline std::optional<std::uint64_t> checked_sum(std::uint64_t a, std::uint64_t b) {
    std::uint64_t s = 0;
    if (__builtin_add_overflow(a, b, &s)) return std::nullopt;
    return s;
}

// "3.1 GB", "812 MB": a byte count for a message.
inline std::string bytes_text(double bytes) {
    const char* units[] = {"bytes", "kB", "MB", "GB", "TB", "PB", "EB"};
    int u = 0;
    while (bytes >= 1000 && u < 6) {
        bytes /= 1000;
        ++u;
    }
    char text[32];
    std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
    return text;
}

}  // namespace nnmark
