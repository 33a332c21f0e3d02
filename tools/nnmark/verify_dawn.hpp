// verify --dawn-registry: a suspect tested against the answers a DAWN server altered
// (verify_dawn.cpp).
#pragma once

#include "cli.hpp"
#include "verify_remote.hpp"

#include <optional>
#include <string>

namespace nnmark::cli {

struct dawn_verify_options {
    std::string registry;  // the directory of `nnmark serve --dawn-registry`
    std::string client;    // "": every client's records
    std::optional<std::string> expected_commitment;  // --expect-commitment: refuse another registry
};

// Exit 2 (argument_error) unless `commitment`, of a key or a registry (`of`), is the
// one the owner published, `expected` in any case (verify.cpp).
void check_commitment(const std::string& commitment, std::string expected, const std::string& of);

// A suspect model file and its --arch (empty: the network the file records).
struct suspect_file {
    std::string path, arch;
};

// Asks the model file `model`, or the service of `remote.url` when given, the registry's
// images; prints the result (JSON when `json`) and returns the exit code.
int verify_dawn(const dawn_verify_options& o, const suspect_file& model, const remote_verify_options& remote,
                double alpha, bool json);

}  // namespace nnmark::cli
