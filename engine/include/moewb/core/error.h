// SPDX-License-Identifier: MIT
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace moewb {

/// Base of every exception the engine throws. what() is one line meant for the user:
/// "<where>: <problem>", where <where> names the file, tensor, JSON path or byte offset.
class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message)
        : std::runtime_error(message)
    {
    }
    Error(const std::string& where, const std::string& problem)
        : std::runtime_error(where.empty() ? problem : where + ": " + problem)
    {
    }
};

/// Bad user input: malformed file, unknown key, missing tensor. Exit code 1 at the CLI.
class InputError : public Error {
public:
    using Error::Error;
};

/// The output already exists and replacing it was not asked for. what() is "<path>: already
/// exists"; the CLI adds how to replace it (--force), the GUI asks.
class OutputExistsError : public InputError {
public:
    explicit OutputExistsError(const std::string& path)
        : InputError(path, "already exists")
    {
    }
};

/// The operating system refused: cannot open, read, write, rename.
class IoError : public Error {
public:
    using Error::Error;
};

/// The user (or the GUI) asked to stop. Not a failure: exit code 130 at the CLI.
class Cancelled : public Error {
public:
    Cancelled()
        : Error("cancelled")
    {
    }
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args)
{
    std::ostringstream os;
    (os << ... << args);
    return os.str();
}
} // namespace detail

} // namespace moewb

/// Throw InputError("where: message") unless cond holds. The message parts are streamed.
#define MOEWB_CHECK(cond, where, ...)                                                          \
    do {                                                                                       \
        if (!(cond))                                                                           \
            throw ::moewb::InputError((where), ::moewb::detail::concat(__VA_ARGS__));          \
    } while (0)

/// Our own invariant; a failure is a bug in moewb, not in the input.
#define MOEWB_ASSERT(cond)                                                                     \
    do {                                                                                       \
        if (!(cond))                                                                           \
            throw ::moewb::Error(::moewb::detail::concat(__FILE__, ":", __LINE__,             \
                                                         ": internal error: ", #cond));        \
    } while (0)
