// SPDX-License-Identifier: GPL-3.0-or-later
// Result<T>: a value or an Error, the engine's only way of reporting failure.
// Owns: nothing beyond the value or the message. Promises: an Error always carries a human-readable
// message that names what went wrong (the file, the field, the tensor). Never throws for expected
// failures (bad files, bad input, out of memory); exceptions are reserved for programming errors.
#pragma once

#include <cassert>
#include <sstream>
#include <string>
#include <utility>
#include <variant>

namespace folio {

enum class ErrorCode {
    InvalidArgument,  // the caller passed something unusable
    NotFound,         // a file or an entry is missing
    Io,               // the operating system refused a read, write or map
    Format,           // a file's content is malformed or inconsistent
    Unsupported,      // well-formed but outside what this build can do
    OutOfMemory,      // host or device memory ran out
    Cancelled,        // the caller asked to stop
    Backend,          // a compute backend failed (e.g. a CUDA error)
};

const char* errorCodeName(ErrorCode code);

struct Error {
    ErrorCode code = ErrorCode::InvalidArgument;
    std::string message;

    // Prefixes the message with context, e.g. the file being read.
    Error withContext(const std::string& context) const { return {code, context + ": " + message}; }
};

// Concatenates anything streamable into a string: cat("layer ", 3, " is missing").
template <typename... Args>
std::string cat(Args&&... args) {
    std::ostringstream out;
    (out << ... << std::forward<Args>(args));
    return out.str();
}

template <typename... Args>
Error makeError(ErrorCode code, Args&&... args) {
    return Error{code, cat(std::forward<Args>(args)...)};
}

template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value) : state_(std::move(value)) {}      // NOLINT: implicit by design
    Result(Error error) : state_(std::move(error)) {}  // NOLINT: implicit by design

    bool ok() const { return std::holds_alternative<T>(state_); }
    explicit operator bool() const { return ok(); }

    T& value() & {
        assert(ok());
        return std::get<T>(state_);
    }
    const T& value() const& {
        assert(ok());
        return std::get<T>(state_);
    }
    T&& value() && {
        assert(ok());
        return std::get<T>(std::move(state_));
    }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    const Error& error() const {
        assert(!ok());
        return std::get<Error>(state_);
    }

  private:
    std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT: implicit by design

    bool ok() const { return !failed_; }
    explicit operator bool() const { return ok(); }
    const Error& error() const {
        assert(failed_);
        return error_;
    }

  private:
    Error error_;
    bool failed_ = false;
};

using Status = Result<void>;

}  // namespace folio

// Propagates an error from an expression returning Result<...>.
#define FOLIO_TRY(expr)                       \
    do {                                      \
        auto folio_try_result_ = (expr);      \
        if (!folio_try_result_.ok())          \
            return folio_try_result_.error(); \
    } while (0)

#define FOLIO_CONCAT_INNER(a, b) a##b
#define FOLIO_CONCAT(a, b) FOLIO_CONCAT_INNER(a, b)
// Declares `lhs` from a Result-returning expression, or returns its error.
#define FOLIO_ASSIGN_OR_RETURN(lhs, expr) \
    FOLIO_ASSIGN_OR_RETURN_IMPL(FOLIO_CONCAT(folio_result_, __LINE__), lhs, expr)
#define FOLIO_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
    auto tmp = (expr);                              \
    if (!tmp.ok())                                  \
        return tmp.error();                         \
    lhs = std::move(tmp).value()
