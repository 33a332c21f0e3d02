// Running the PyTorch oracle (tests/oracle/torch_oracle.py) from a test.
//
// Needs torch: when the python (NNMARK_PYTHON, default /usr/bin/python3, where Debian's
// python3-torch installs) cannot import it, the tests that use it skip (skips.hpp).
#pragma once

#include "files.hpp"

#include <cstdlib>
#include <string>

namespace nnmark::testing {

// The python interpreter that runs the oracle script.
inline std::string python() {
    const char* chosen = std::getenv("NNMARK_PYTHON");
    return chosen && *chosen ? chosen : "/usr/bin/python3";
}

inline bool torch_available() { return std::system((python() + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0; }

inline std::string torch_missing_reason() {
    return python() + " cannot import torch (install python3-torch, or set NNMARK_PYTHON)";
}

// The exit status of the oracle script run with `arguments`.
inline int run_torch_oracle(const std::string& arguments) {
    return std::system((python() + " " + (source_dir() / "tests/oracle/torch_oracle.py").string() + " " + arguments).c_str());
}

}  // namespace nnmark::testing
