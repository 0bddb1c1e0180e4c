// SPDX-License-Identifier: GPL-3.0-or-later
#include "result.h"

namespace folio {

const char* errorCodeName(ErrorCode code) {
    switch (code) {
        case ErrorCode::InvalidArgument:
            return "invalid argument";
        case ErrorCode::NotFound:
            return "not found";
        case ErrorCode::Io:
            return "i/o error";
        case ErrorCode::Format:
            return "format error";
        case ErrorCode::Unsupported:
            return "unsupported";
        case ErrorCode::OutOfMemory:
            return "out of memory";
        case ErrorCode::Cancelled:
            return "cancelled";
        case ErrorCode::Backend:
            return "backend error";
    }
    return "error";
}

}  // namespace folio
