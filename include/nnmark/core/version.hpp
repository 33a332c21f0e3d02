// The version of these headers, for code that builds against more than one nnmark.
//
// Written by hand and kept equal to project(VERSION) in CMakeLists.txt and
// project(version :) in meson.build: scripts/test-package.sh builds a consumer that
// compares NNMARK_VERSION_STRING with the installed CMake package's version and with
// `pkg-config --modversion nnmark` from both build systems' installs.
#pragma once

#define NNMARK_VERSION_MAJOR 0
#define NNMARK_VERSION_MINOR 1
#define NNMARK_VERSION_PATCH 0

// "0.1.0", spelled from the three numbers above so that it cannot disagree with them.
#define NNMARK_VERSION_STRING                                                     \
    NNMARK_VERSION_STRINGIFY(NNMARK_VERSION_MAJOR) "." NNMARK_VERSION_STRINGIFY( \
        NNMARK_VERSION_MINOR) "." NNMARK_VERSION_STRINGIFY(NNMARK_VERSION_PATCH)
#define NNMARK_VERSION_STRINGIFY(x) NNMARK_VERSION_STRINGIFY_TOKENS(x)
#define NNMARK_VERSION_STRINGIFY_TOKENS(x) #x
