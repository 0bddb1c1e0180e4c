// SPDX-License-Identifier: GPL-3.0-or-later
// folio-tokenizer-bench: tokenizer throughput on given text files.
//   folio-tokenizer-bench --ranks FILE [--pattern kimi|o200k_base|cl100k_base] [--min-mb N]
//                         [--repeats N] [--threads N] LABEL=FILE...
// Each FILE is repeated (joined by blank lines) until it is at least --min-mb megabytes (10^6
// bytes), then encoded on one thread, on --threads threads as one text, and on --threads threads
// as a batch of documents (one per copy). The best of --repeats runs is reported, in MB/s of
// UTF-8 input, both per wall-clock second and per CPU second (the latter does not depend on what
// else the machine runs). Nothing here is a test: timings depend on the machine.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "inference/model_config.h"
#include "inference/tokenizer/parallel_for.h"
#include "inference/tokenizer/tiktoken_file.h"
#include "inference/tokenizer/tokenizer.h"

namespace {

using namespace folio;
using namespace folio::tokenizer;

constexpr const char* kUsage =
    "usage: folio-tokenizer-bench --ranks FILE [--pattern kimi|o200k_base|cl100k_base]\n"
    "                             [--min-mb N] [--repeats N] [--threads N] LABEL=FILE...\n";

int fail(const std::string& message) {
    std::fprintf(stderr, "folio-tokenizer-bench: %s\n", message.c_str());
    return 1;
}

struct Timing {
    double wall = 1e300;  // seconds
    double cpu = 1e300;   // seconds of CPU time of the whole process (all threads)
};

// The best wall-clock and the best CPU time over `repeats` runs. CPU time is what a run costs
// when other processes share the machine; wall time is what parallel runs gain.
template <typename F>
Timing best(int repeats, F&& run) {
    Timing t;
    for (int r = 0; r < repeats; ++r) {
        const auto start = std::chrono::steady_clock::now();
        const std::clock_t cpuStart = std::clock();
        run();
        const std::clock_t cpuEnd = std::clock();
        const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
        t.wall = std::min(t.wall, took.count());
        t.cpu = std::min(t.cpu, static_cast<double>(cpuEnd - cpuStart) / CLOCKS_PER_SEC);
    }
    return t;
}

}  // namespace

int main(int argc, char** argv) {
    std::string ranksPath;
    std::string pattern = "kimi";
    double minMb = 8;
    int repeats = 3;
    int threads = 0;
    std::vector<std::pair<std::string, std::string>> inputs;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s", kUsage);
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--ranks")
            ranksPath = value();
        else if (a == "--pattern")
            pattern = value();
        else if (a == "--min-mb")
            minMb = std::atof(value().c_str());
        else if (a == "--repeats")
            repeats = std::max(1, std::atoi(value().c_str()));
        else if (a == "--threads")
            threads = std::atoi(value().c_str());
        else if (auto eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) != 0)
            inputs.emplace_back(a.substr(0, eq), a.substr(eq + 1));
        else {
            std::fprintf(stderr, "%s", kUsage);
            return 2;
        }
    }
    if (ranksPath.empty() || inputs.empty()) {
        std::fprintf(stderr, "%s", kUsage);
        return 2;
    }
    threads = resolveThreadCount(threads);

    const auto loadStart = std::chrono::steady_clock::now();
    auto ranks = readTiktokenFile(ranksPath);
    if (!ranks)
        return fail(ranks.error().message);
    auto vocabulary = BpeVocabulary::build(std::move(ranks).value(), ranksPath);
    if (!vocabulary)
        return fail(vocabulary.error().message);
    auto pre = PreTokenizer::fromName(pattern);
    if (!pre)
        return fail(pre.error().message);
    auto tokenizer = Tokenizer::create(std::move(vocabulary).value(), SpecialTokens{}, *pre,
                                       pattern == "kimi" ? kKimiChunkLimits : ChunkLimits{});
    if (!tokenizer)
        return fail(tokenizer.error().message);
    const std::chrono::duration<double> loadTime = std::chrono::steady_clock::now() - loadStart;
    std::printf("ranks %s (%u tokens) loaded in %.2f s; pattern %s; best of %d runs\n",
                ranksPath.c_str(), tokenizer->vocabulary().size(), loadTime.count(),
                std::string(tokenizer->preTokenizer().name()).c_str(), repeats);

    for (const auto& [label, path] : inputs) {
        auto file = inference::readTextFile(path, uint64_t{1} << 30);
        if (!file)
            return fail(file.error().message);
        if (file->empty())
            return fail(path + " is empty");
        std::string text;
        std::vector<std::string_view> docs;
        while (static_cast<double>(text.size()) < minMb * 1e6) {
            text += *file;
            text += "\n\n";
        }
        const size_t copy = file->size() + 2;
        for (size_t at = 0; at < text.size(); at += copy)
            docs.push_back(std::string_view(text).substr(at, copy));

        EncodeOptions one;
        one.threads = 1;
        EncodeOptions many;
        many.threads = threads;
        size_t tokens = 0;
        auto warm = tokenizer->encode(text, one);
        if (!warm)
            return fail(warm.error().message);
        tokens = warm->size();
        const double mb = static_cast<double>(text.size()) / 1e6;
        const Timing single = best(repeats, [&] { (void)tokenizer->encode(text, one); });
        const Timing parallel = best(repeats, [&] { (void)tokenizer->encode(text, many); });
        const Timing batch = best(repeats, [&] { (void)tokenizer->encodeBatch(docs, many); });
        std::printf("%s (%s): %.2f MB, %zu tokens (%.2f bytes/token)\n", label.c_str(),
                    path.c_str(), mb, tokens, static_cast<double>(text.size()) / tokens);
        std::printf("  %-36s %8.2f MB/s wall, %8.2f MB/s per CPU second\n",
                    "1 thread:", mb / single.wall, mb / single.cpu);
        std::printf("  %-36s %8.2f MB/s wall, %8.2f MB/s per CPU second\n",
                    cat(threads, " threads, one text:").c_str(), mb / parallel.wall,
                    mb / parallel.cpu);
        std::printf("  %-36s %8.2f MB/s wall, %8.2f MB/s per CPU second\n",
                    cat(threads, " threads, batch of ", docs.size(), " documents:").c_str(),
                    mb / batch.wall, mb / batch.cpu);
    }
    return 0;
}
