// SPDX-License-Identifier: GPL-3.0-or-later
// A helper process for the session fault tests (a separate process, so it can be killed with
// SIGKILL, run under a file size limit, or hold a data directory):
//   session_fault_helper write-loop DATA MODEL SOURCES   add sources and prefill forever
//   session_fault_helper fsize-ask DATA MODEL SOURCES LIMIT   ask under RLIMIT_FSIZE = LIMIT
//   session_fault_helper open DATA MODEL                 open the data directory, report
// Prints what happened on stdout; exit 0 on the expected outcome.
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstring>

#include "session_test_support.h"

using namespace folio;
using namespace folio::session;

namespace {

int writeLoop(const std::filesystem::path& data, const std::filesystem::path& model,
              const std::filesystem::path& sources) {
    auto service = SessionService::open(testing::serviceOptions(data, model));
    if (!service) {
        std::printf("error: %s\n", service.error().message.c_str());
        return 2;
    }
    for (int round = 0;; ++round) {
        auto s = (*service)->createSession(cat("loop ", round));
        if (!s)
            return 2;
        for (int i = 0; i < 3; ++i) {
            auto path = testing::writeSource(sources, cat("loop-", round, "-", i, ".txt"),
                                             round * 10 + i, 120);
            if (!path || !(*service)->addSource(s->id, *path))
                return 2;
        }
        auto prepared = (*service)->prepare(s->id);
        if (!prepared) {
            std::printf("error: %s\n", prepared.error().message.c_str());
            return 2;
        }
        std::printf("round %d\n", round);
        std::fflush(stdout);
    }
}

int fsizeAsk(const std::filesystem::path& data, const std::filesystem::path& model,
             const std::filesystem::path& sources, long limit) {
    auto service = SessionService::open(testing::serviceOptions(data, model));
    if (!service) {
        std::printf("error: %s\n", service.error().message.c_str());
        return 2;
    }
    auto s = (*service)->createSession("disk full");
    auto path = testing::writeSource(sources, "big.txt", 99, 1500);
    if (!s || !path || !(*service)->addSource(s->id, *path))
        return 2;
    // From here on no file may grow past `limit` bytes: writes fail with EFBIG as on a full disk.
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl {};
    rl.rlim_cur = rl.rlim_max = static_cast<rlim_t>(limit);
    if (::setrlimit(RLIMIT_FSIZE, &rl) != 0)
        return 2;
    AskOptions options;
    options.generation.maxTokens = 4;
    auto answer = (*service)->ask(s->id, "Who may terminate?", options);
    if (!answer) {
        std::printf("ask failed: %s\n", answer.error().message.c_str());
        return 3;
    }
    for (const auto& w : answer->warnings)
        std::printf("warning: %s\n", w.c_str());
    std::printf("answered %zu tokens\n", answer->answerTokens.size());
    return answer->warnings.empty() ? 4 : 0;
}

int openOnly(const std::filesystem::path& data, const std::filesystem::path& model) {
    auto service = SessionService::open(testing::serviceOptions(data, model));
    if (!service) {
        std::printf("error: %s\n", service.error().message.c_str());
        return 3;
    }
    std::printf("opened\n");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 4 && std::strcmp(argv[1], "write-loop") == 0 && argc == 5)
        return writeLoop(argv[2], argv[3], argv[4]);
    if (argc == 6 && std::strcmp(argv[1], "fsize-ask") == 0)
        return fsizeAsk(argv[2], argv[3], argv[4], std::atol(argv[5]));
    if (argc == 4 && std::strcmp(argv[1], "open") == 0)
        return openOnly(argv[2], argv[3]);
    std::fprintf(stderr, "usage: session_fault_helper write-loop|fsize-ask|open ...\n");
    return 64;
}
