// SPDX-License-Identifier: GPL-3.0-or-later
// folio-snapshot-bench: restoring a snapshot chain from disk against the disk's own sequential
// read speed, and the first token of a question after the restore (Qt-free, SQLite-free).
//
//   folio-snapshot-bench (--config kimi-linear-48b-a3b | --model DIR) [--backend cuda|cpu]
//                        [--tokens 131072] [--links 4] [--dir PATH] [--question 50] [--rounds 3]
//
// A sequence of --tokens tokens is made with Engine::fillSyntheticContext (or, on a backend
// without synthetic contexts, with noise imported through importState), written as a chain of
// --links snapshot files (link k holds the MLA rows of its own token range and the KDA state)
// in a fresh folder under --dir, flushed and dropped from the page cache. Each round then reads
// the files raw (the disk's sequential speed), drops them again, and times readSnapshotChain
// (read + verify) and Engine::importState separately. Finally the restored sequence is forked and
// --question random tokens are prefilled (last logits only): the time to first token after the
// restore. One JSON line per measure, then a table. The folder is removed at the end, also on
// errors.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "inference/engine.h"
#include "inference/kimi_linear_48b_config.h"
#include "inference/model_config.h"
#include "storage/read_speed.h"
#include "storage/snapshot_file.h"

using namespace folio;
using namespace folio::inference;
namespace fs = std::filesystem;

namespace {

struct Options {
    std::string config;
    std::string model;
    BackendKind backend = BackendKind::Cuda;
    int64_t tokens = 131072;
    int64_t links = 4;
    fs::path dir = ".";
    int64_t question = 50;
    int64_t rounds = 3;
};

constexpr const char* kUsage =
    "usage: folio-snapshot-bench (--config kimi-linear-48b-a3b | --model DIR) "
    "[--backend cuda|cpu] [--tokens 131072] [--links 4] [--dir PATH] [--question 50] "
    "[--rounds 3]\n";

double secondsSince(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

// Removes the bench's folder (and the snapshot files in it) however run() ends.
class FolderGuard {
  public:
    explicit FolderGuard(fs::path path) : path_(std::move(path)) {}
    FolderGuard(const FolderGuard&) = delete;
    FolderGuard& operator=(const FolderGuard&) = delete;
    ~FolderGuard() {
        std::error_code ec;
        fs::remove_all(path_, ec);
        if (ec)
            std::fprintf(stderr, "folio-snapshot-bench: cannot remove %s: %s\n", path_.c_str(),
                         ec.message().c_str());
    }

  private:
    fs::path path_;
};

Result<std::unique_ptr<Engine>> openEngine(const Options& o) {
    EngineOptions options;
    options.backend = o.backend;
    if (!o.model.empty())
        return Engine::open(o.model, options);
    if (o.config != "kimi-linear-48b-a3b")
        return makeError(ErrorCode::InvalidArgument, "unknown config \"", o.config,
                         "\" (kimi-linear-48b-a3b is known)");
    FOLIO_ASSIGN_OR_RETURN(ModelConfig config, parseModelConfig(kKimiLinear48BA3BConfigJson));
    return Engine::openRandom(config, 1, options);
}

// A sequence `length` tokens long with arbitrary contents.
Result<Sequence> syntheticSequence(Engine& engine, int64_t length) {
    FOLIO_ASSIGN_OR_RETURN(Sequence seq, engine.newSequence());
    Status filled = engine.fillSyntheticContext(seq, length);
    if (filled.ok())
        return seq;
    if (filled.error().code != ErrorCode::Unsupported)
        return filled.error();
    // The backend has no synthetic contexts (the CPU reference): noise of the state's shapes.
    FOLIO_ASSIGN_OR_RETURN(std::vector<StateTensor> tensors, engine.exportState(seq, 0));
    std::mt19937 rng(7);
    std::normal_distribution<float> noise(0.0f, 0.1f);
    for (StateTensor& t : tensors) {
        if (t.name.rfind("mla.", 0) == 0)
            t.shape[0] = length;
        size_t n = 1;
        for (int64_t d : t.shape)
            n *= static_cast<size_t>(d);
        t.data.resize(n);
        for (float& v : t.data)
            v = noise(rng);
    }
    return engine.importState(std::vector<int32_t>(static_cast<size_t>(length), 0),
                              std::move(tensors));
}

// Writes `seq` as a chain of `links` files in `folder`; returns their paths, root first.
Result<std::vector<fs::path>> writeChain(Engine& engine, const Sequence& seq, int64_t links,
                                         const storage::SnapshotIdentity& identity,
                                         const fs::path& folder, uint64_t& bytesWritten) {
    FOLIO_ASSIGN_OR_RETURN(std::vector<StateTensor> all, engine.exportState(seq, 0));
    const int64_t tokens = seq.length();
    std::vector<fs::path> files;
    std::string parent;
    bytesWritten = 0;
    for (int64_t k = 0; k < links; ++k) {
        const int64_t begin = tokens * k / links, end = tokens * (k + 1) / links;
        // The link's part of the state: MLA rows [begin, end), the KDA state whole (the end's).
        std::vector<StateTensor> part;
        part.reserve(all.size());
        for (const StateTensor& t : all) {
            if (t.name.rfind("mla.", 0) != 0) {
                part.push_back(t);
                continue;
            }
            const auto width = static_cast<size_t>(t.shape[1]);
            StateTensor rows{t.name, {end - begin, t.shape[1]}, {}};
            rows.data.assign(t.data.begin() + static_cast<ptrdiff_t>(begin) * width,
                             t.data.begin() + static_cast<ptrdiff_t>(end) * width);
            part.push_back(std::move(rows));
        }
        storage::SnapshotContent content;
        content.identity = identity;
        content.prefixKey = cat("bench-", k);
        content.parentKey = parent;
        content.tokenBegin = begin;
        content.tokens = std::span(seq.tokens())
                             .subspan(static_cast<size_t>(begin), static_cast<size_t>(end - begin));
        content.tensors = &part;
        const fs::path file = folder / cat("link-", k, ".fsnap");
        FOLIO_ASSIGN_OR_RETURN(uint64_t written, storage::writeSnapshotFile(file, content));
        bytesWritten += written;
        files.push_back(file);
        parent = content.prefixKey;
    }
    return files;
}

struct Round {
    double diskSeconds = 0, diskMBps = 0, residentAfterDrop = 0;
    double readSeconds = 0, readMBps = 0;
    double importSeconds = 0, totalSeconds = 0, totalMBps = 0;
    uint64_t diskBytes = 0, restoredBytes = 0;
};

Status run(const Options& o) {
    const auto openStart = std::chrono::steady_clock::now();
    FOLIO_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, openEngine(o));
    std::fprintf(stderr, "folio-snapshot-bench: %s engine ready in %.1f s\n",
                 engine->backendName().c_str(), secondsSince(openStart));

    const fs::path folder = o.dir / cat("folio-snapshot-bench-", ::getpid());
    std::error_code ec;
    if (!fs::create_directories(folder, ec))
        return makeError(ErrorCode::Io, "cannot create ", folder.string(), ": ",
                         ec ? ec.message() : "it exists");
    FolderGuard guard(folder);
    if (o.tokens < o.links || o.tokens > engine->config().modelMaxLength)
        return makeError(ErrorCode::InvalidArgument,
                         "--tokens must be at least --links and at most ", "the model's context (",
                         engine->config().modelMaxLength, ")");

    const storage::SnapshotIdentity identity{cat("bench-", engine->config().fingerprint()),
                                             "folio-snapshot-bench"};
    uint64_t written = 0;
    double writeSeconds = 0;
    std::vector<int32_t> writtenTokens;
    std::vector<fs::path> files;
    {
        // The source sequence lives only while it is written (device memory).
        FOLIO_ASSIGN_OR_RETURN(Sequence seq, syntheticSequence(*engine, o.tokens));
        writtenTokens = seq.tokens();
        const auto writeStart = std::chrono::steady_clock::now();
        FOLIO_ASSIGN_OR_RETURN(files, writeChain(*engine, seq, o.links, identity, folder, written));
        writeSeconds = secondsSince(writeStart);
    }
    const std::string backend = engine->backendName();
    std::printf(
        "{\"measure\":\"write\",\"backend\":\"%s\",\"tokens\":%lld,\"links\":%lld,"
        "\"bytes\":%llu,\"seconds\":%.3f,\"MBps\":%.0f}\n",
        backend.c_str(), static_cast<long long>(o.tokens), static_cast<long long>(o.links),
        static_cast<unsigned long long>(written), writeSeconds,
        static_cast<double>(written) / writeSeconds / 1e6);
    std::fflush(stdout);

    std::vector<Round> rounds;
    std::optional<Sequence> restoredSeq;
    for (int64_t r = 0; r < o.rounds; ++r) {
        Round round;
        FOLIO_TRY(storage::dropFromPageCache(files));
        FOLIO_ASSIGN_OR_RETURN(round.residentAfterDrop, storage::residentFraction(files));
        FOLIO_ASSIGN_OR_RETURN(storage::ReadTiming disk, storage::timeSequentialRead(files));
        round.diskBytes = disk.bytes;
        round.diskSeconds = disk.seconds;
        round.diskMBps = disk.megabytesPerSecond();
        FOLIO_TRY(storage::dropFromPageCache(files));

        const auto start = std::chrono::steady_clock::now();
        FOLIO_ASSIGN_OR_RETURN(storage::RestoredState state,
                               storage::readSnapshotChain(files, identity));
        round.readSeconds = secondsSince(start);
        round.restoredBytes = state.bytesRead;
        if (state.tokens != writtenTokens)
            return makeError(ErrorCode::Format, "the restored tokens differ from the written");
        restoredSeq.reset();  // one restored state at a time (device memory)
        const auto importStart = std::chrono::steady_clock::now();
        FOLIO_ASSIGN_OR_RETURN(Sequence restored, engine->importState(std::move(state.tokens),
                                                                      std::move(state.tensors)));
        round.importSeconds = secondsSince(importStart);
        round.totalSeconds = secondsSince(start);
        round.readMBps = static_cast<double>(round.restoredBytes) / round.readSeconds / 1e6;
        round.totalMBps = static_cast<double>(round.restoredBytes) / round.totalSeconds / 1e6;
        std::printf(
            "{\"measure\":\"restore_round\",\"round\":%lld,\"backend\":\"%s\",\"tokens\":%lld,"
            "\"restored_tokens\":%lld,\"bytes\":%llu,\"disk_bytes\":%llu,"
            "\"cached_after_drop\":%.3f,\"disk_s\":%.3f,\"disk_MBps\":%.0f,"
            "\"read_verify_s\":%.3f,\"read_verify_MBps\":%.0f,\"import_s\":%.3f,"
            "\"restore_s\":%.3f,\"restore_MBps\":%.0f,\"ratio_read_verify\":%.3f,"
            "\"ratio_restore\":%.3f}\n",
            static_cast<long long>(r), backend.c_str(), static_cast<long long>(o.tokens),
            static_cast<long long>(restored.length()),
            static_cast<unsigned long long>(round.restoredBytes),
            static_cast<unsigned long long>(round.diskBytes), round.residentAfterDrop,
            round.diskSeconds, round.diskMBps, round.readSeconds, round.readMBps,
            round.importSeconds, round.totalSeconds, round.totalMBps,
            round.readMBps / round.diskMBps, round.totalMBps / round.diskMBps);
        std::fflush(stdout);
        rounds.push_back(round);
        restoredSeq.emplace(std::move(restored));
    }

    // A question after the restore: fork the restored state, prefill it, first logits.
    std::mt19937 rng(11);
    std::uniform_int_distribution<int32_t> token(
        0, static_cast<int32_t>(std::min<int64_t>(engine->config().vocabSize, 1 << 30) - 1));
    std::vector<int32_t> question(static_cast<size_t>(o.question));
    for (int32_t& t : question)
        t = token(rng);
    double questionSeconds = 0;
    if (restoredSeq && o.question > 0) {
        const auto start = std::chrono::steady_clock::now();
        FOLIO_ASSIGN_OR_RETURN(Sequence asked, restoredSeq->fork());
        PrefillOptions prefill;
        prefill.logits = LogitsWanted::Last;
        FOLIO_ASSIGN_OR_RETURN(Logits logits, engine->prefill(asked, question, prefill));
        questionSeconds = secondsSince(start);
        if (logits.rows() != 1)
            return makeError(ErrorCode::Format, "the question's prefill gave ", logits.rows(),
                             " rows of logits");
        std::printf(
            "{\"measure\":\"question\",\"backend\":\"%s\",\"tokens\":%lld,"
            "\"question_tokens\":%lld,\"ttft_ms\":%.2f}\n",
            backend.c_str(), static_cast<long long>(o.tokens), static_cast<long long>(o.question),
            questionSeconds * 1e3);
    }

    auto pick = [&](double Round::*field) {
        std::vector<double> v;
        for (const Round& r : rounds)
            v.push_back(r.*field);
        return median(v);
    };
    Round m;
    m.diskMBps = pick(&Round::diskMBps);
    m.readMBps = pick(&Round::readMBps);
    m.totalMBps = pick(&Round::totalMBps);
    m.readSeconds = pick(&Round::readSeconds);
    m.importSeconds = pick(&Round::importSeconds);
    m.totalSeconds = pick(&Round::totalSeconds);
    m.diskSeconds = pick(&Round::diskSeconds);
    const uint64_t bytes = rounds.empty() ? 0 : rounds.front().restoredBytes;
    std::vector<double> ratioRead, ratioTotal;
    for (const Round& r : rounds) {
        ratioRead.push_back(r.readMBps / r.diskMBps);
        ratioTotal.push_back(r.totalMBps / r.diskMBps);
    }
    std::printf(
        "{\"measure\":\"summary\",\"backend\":\"%s\",\"tokens\":%lld,\"links\":%lld,"
        "\"rounds\":%lld,\"bytes\":%llu,\"disk_MBps\":%.0f,\"read_verify_MBps\":%.0f,"
        "\"restore_MBps\":%.0f,\"ratio_read_verify\":%.3f,\"ratio_restore\":%.3f,"
        "\"read_verify_s\":%.3f,\"import_s\":%.3f,\"restore_s\":%.3f,\"ttft_ms\":%.2f,"
        "\"restore_then_question_s\":%.3f}\n",
        backend.c_str(), static_cast<long long>(o.tokens), static_cast<long long>(o.links),
        static_cast<long long>(rounds.size()), static_cast<unsigned long long>(bytes), m.diskMBps,
        m.readMBps, m.totalMBps, median(ratioRead), median(ratioTotal), m.readSeconds,
        m.importSeconds, m.totalSeconds, questionSeconds * 1e3, m.totalSeconds + questionSeconds);

    std::printf("\n%-30s %12s %10s %10s %8s\n", "medians over rounds", "bytes", "seconds", "MB/s",
                "ratio");
    std::printf("%-30s %12llu %10.3f %10.0f %8s\n", "disk sequential read",
                static_cast<unsigned long long>(bytes), m.diskSeconds, m.diskMBps, "1.00");
    std::printf("%-30s %12llu %10.3f %10.0f %8.2f\n", "restore: read + verify",
                static_cast<unsigned long long>(bytes), m.readSeconds, m.readMBps,
                median(ratioRead));
    std::printf("%-30s %12s %10.3f %10s %8s\n", "restore: import into engine", "", m.importSeconds,
                "", "");
    std::printf("%-30s %12llu %10.3f %10.0f %8.2f\n", "restore: total",
                static_cast<unsigned long long>(bytes), m.totalSeconds, m.totalMBps,
                median(ratioTotal));
    std::printf("%-30s %12s %10.3f %10s %8s\n",
                cat("question (", o.question, " tokens) TTFT").c_str(), "", questionSeconds, "",
                "");
    return {};
}

Result<int64_t> number(const std::string& text, const std::string& what) {
    try {
        size_t used = 0;
        const long long v = std::stoll(text, &used);
        if (used == text.size() && v >= 0)
            return static_cast<int64_t>(v);
    } catch (...) {
    }
    return makeError(ErrorCode::InvalidArgument, what, " needs a number, not \"", text, "\"");
}

Result<Options> parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (i + 1 >= argc)
            return makeError(ErrorCode::InvalidArgument, arg, " needs a value");
        const std::string value = argv[++i];
        if (arg == "--config") {
            o.config = value;
        } else if (arg == "--model") {
            o.model = value;
        } else if (arg == "--backend") {
            if (value == "cuda")
                o.backend = BackendKind::Cuda;
            else if (value == "cpu")
                o.backend = BackendKind::Cpu;
            else
                return makeError(ErrorCode::InvalidArgument, "--backend is cuda or cpu");
        } else if (arg == "--dir") {
            o.dir = value;
        } else if (arg == "--tokens") {
            FOLIO_ASSIGN_OR_RETURN(o.tokens, number(value, arg));
        } else if (arg == "--links") {
            FOLIO_ASSIGN_OR_RETURN(o.links, number(value, arg));
        } else if (arg == "--question") {
            FOLIO_ASSIGN_OR_RETURN(o.question, number(value, arg));
        } else if (arg == "--rounds") {
            FOLIO_ASSIGN_OR_RETURN(o.rounds, number(value, arg));
        } else {
            return makeError(ErrorCode::InvalidArgument, "unknown option ", arg);
        }
    }
    if (o.config.empty() == o.model.empty())
        return makeError(ErrorCode::InvalidArgument, "give one of --config and --model");
    if (o.links < 1 || o.rounds < 1)
        return makeError(ErrorCode::InvalidArgument, "--links and --rounds must be at least 1");
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i)
        if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
            std::printf("%s", kUsage);
            return 0;
        }
    auto options = parse(argc, argv);
    if (!options) {
        std::fprintf(stderr, "folio-snapshot-bench: %s\n%s", options.error().message.c_str(),
                     kUsage);
        return 2;
    }
    if (auto s = run(*options); !s) {
        std::fprintf(stderr, "folio-snapshot-bench: %s\n", s.error().message.c_str());
        return 1;
    }
    return 0;
}
