// nnmark::error and its subclasses: the one exception family of the project.
//
// Every failure the engine can detect is reported as an exception derived from
// nnmark::error, with a message that says what was expected, what was found and
// where (file, byte offset, layer, shape). The command-line tool maps any
// nnmark::error to exit code 2 and prints the message on one line.
#pragma once

#include <stdexcept>
#include <string>

namespace nnmark {

class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A file or buffer does not follow its format (IDX, CIFAR-10, safetensors, JSON).
class format_error : public error {
public:
    using error::error;
};

// Tensor shapes do not fit together (layer input, parameter file, batch).
class shape_error : public error {
public:
    using error::error;
};

// The operating system refused a read or a write.
class io_error : public error {
public:
    using error::error;
};

// A caller passed a value outside what a function accepts (negative rate, unknown name).
class argument_error : public error {
public:
    using error::error;
};

}  // namespace nnmark
