// SPDX-License-Identifier: GPL-3.0-or-later
// folio-cli session: sessions on top of folio::session::SessionService (the API the GUI uses).
//   session new NAME | add ID PATH... | ask ID QUESTION | list | show ID | export ID
//   session enable|disable SOURCE_ID | move SOURCE_ID POSITION | bench
// Options: --data DIR (default $FOLIO_DATA_DIR or ~/.local/share/folio), --model DIR (default
// $FOLIO_MODEL_DIR or the demo model: installed, built, or DATA/models/demo, generated with
// random weights when missing).
#include <QDir>
#include <QStandardPaths>
#include <QStringList>

#include <chrono>
#include <cstdio>
#include <map>
#include <random>

#include "cli_commands.h"
#include "inference/model_builder.h"
#include "session/session_service.h"
#include "storage/read_speed.h"

namespace folio::cli {
namespace {

using namespace folio::session;
namespace fs = std::filesystem;

constexpr const char* kUsage =
    "usage: folio-cli session COMMAND [--data DIR] [--model DIR]\n"
    "  new NAME                     create a session, print its id\n"
    "  add SESSION PATH...          ingest files or folders into a session\n"
    "  ask SESSION QUESTION [--max-tokens N] [--temperature T] [--seed N]\n"
    "                               stream the answer, then reused/prefilled tokens and TTFT\n"
    "  list                         sessions, newest first\n"
    "  show SESSION                 sources and messages\n"
    "  export SESSION [--format markdown|json]\n"
    "  enable|disable SOURCE        include or leave out a source\n"
    "  move SOURCE POSITION         reorder (0-based)\n"
    "  prepare SESSION              build and snapshot the sources' state\n"
    "  bench [--tokens N] [--links K]  snapshot restore throughput vs the disk's sequential read\n";

struct Parsed {
    std::vector<std::string> positional;
    std::map<std::string, std::string> options;
};

Parsed parse(const QStringList& args) {
    Parsed p;
    for (qsizetype i = 0; i < args.size(); ++i) {
        const std::string a = args[i].toStdString();
        if (a.rfind("--", 0) == 0 && i + 1 < args.size())
            p.options[a.substr(2)] = args[++i].toStdString();
        else
            p.positional.push_back(a);
    }
    return p;
}

int fail(const Error& e) {
    std::fprintf(stderr, "folio-cli session: %s\n", e.message.c_str());
    return 1;
}

fs::path dataDir(const Parsed& p) {
    if (auto it = p.options.find("data"); it != p.options.end())
        return it->second;
    if (const char* env = std::getenv("FOLIO_DATA_DIR"))
        return env;
    return QStandardPaths::writableLocation(QStandardPaths::GenericDataLocation).toStdString() +
           "/folio";
}

Result<fs::path> modelDir(const Parsed& p, const fs::path& data) {
    if (auto it = p.options.find("model"); it != p.options.end())
        return fs::path(it->second);
    if (const char* env = std::getenv("FOLIO_MODEL_DIR"))
        return fs::path(env);
    // The installed or built demo model, else one written to DATA/models/demo on first use.
    bool written = false;
    FOLIO_ASSIGN_OR_RETURN(fs::path demo,
                           inference::locateDemoModel(data / "models" / "demo", &written));
    if (written)
        std::fprintf(stderr,
                     "folio-cli session: no --model given; wrote the demo model (random "
                     "weights: answers are not meaningful) to %s\n",
                     demo.c_str());
    return demo;
}

Result<int64_t> number(const std::string& text, const char* what) {
    try {
        size_t used = 0;
        const long long v = std::stoll(text, &used);
        if (used == text.size())
            return static_cast<int64_t>(v);
    } catch (...) {
    }
    return makeError(ErrorCode::InvalidArgument, what, " must be a number, not \"", text, "\"");
}

void printStats(const AskResult& r) {
    std::printf(
        "\n\n-- %lld prompt tokens: %lld reused (%s), %lld prefilled; first token after %.1f ms; "
        "%lld tokens at %.1f tokens/s%s\n",
        static_cast<long long>(r.stats.promptTokens), static_cast<long long>(r.stats.reusedTokens),
        r.reusedFrom.c_str(), static_cast<long long>(r.stats.prefilledTokens),
        r.stats.timeToFirstTokenMs, static_cast<long long>(r.stats.generatedTokens),
        r.stats.tokensPerSecond, r.cancelled ? " (cancelled)" : "");
}

RunControl consoleControl() {
    RunControl c;
    c.onText = [](std::string_view text) {
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
    };
    c.onWarning = [](const std::string& w) { std::fprintf(stderr, "warning: %s\n", w.c_str()); };
    c.onProgress = [](const Progress& p) {
        if (p.phase == Progress::Phase::Generating)
            return;
        std::fprintf(stderr, "\r%s %lld/%lld tokens, %.0f tokens/s, ETA %.1f s   ",
                     phaseName(p.phase), static_cast<long long>(p.done),
                     static_cast<long long>(p.total), p.tokensPerSecond,
                     p.etaSeconds < 0 ? 0.0 : p.etaSeconds);
        if (p.done == p.total)
            std::fprintf(stderr, "\n");
    };
    return c;
}

// Restore throughput: a synthetic chain of K links holding N tokens in the model's state shapes
// is written, dropped from the page cache, read back sequentially (the disk's speed) and then
// restored into the engine (checksums verified); both are reported with their ratio.
int bench(SessionService& service, const Parsed& p) {
    int64_t tokens = 65536, links = 4;
    if (auto it = p.options.find("tokens"); it != p.options.end()) {
        auto v = number(it->second, "--tokens");
        if (!v)
            return fail(v.error());
        tokens = *v;
    }
    if (auto it = p.options.find("links"); it != p.options.end()) {
        auto v = number(it->second, "--links");
        if (!v)
            return fail(v.error());
        links = *v;
    }
    if (tokens < links || links < 1)
        return fail(makeError(ErrorCode::InvalidArgument, "need --tokens >= --links >= 1"));
    inference::Engine& engine = service.engine();
    auto empty = engine.newSequence();
    if (!empty)
        return fail(empty.error());
    auto shapes = engine.exportState(*empty, 0);
    if (!shapes)
        return fail(shapes.error());
    std::mt19937 rng(7);
    std::uniform_int_distribution<int32_t> tokenDist(0, 255);
    std::normal_distribution<float> valueDist;
    std::vector<int32_t> ids(static_cast<size_t>(tokens));
    for (auto& t : ids)
        t = tokenDist(rng);
    storage::SnapshotStore& store = service.storage().snapshots();
    std::string parent;
    const std::string run = std::to_string(std::random_device{}());
    std::vector<fs::path> files;
    std::vector<std::string> keys;
    for (int64_t k = 0; k < links; ++k) {
        const int64_t begin = tokens * k / links, end = tokens * (k + 1) / links;
        std::vector<inference::StateTensor> tensors = *shapes;
        for (auto& t : tensors) {
            if (t.name.rfind("mla.", 0) == 0)
                t.shape[0] = end - begin;
            size_t n = 1;
            for (int64_t d : t.shape)
                n *= static_cast<size_t>(d);
            t.data.resize(n);
            for (auto& v : t.data)
                v = valueDist(rng) * 0.1f;
        }
        storage::SnapshotContent c;
        c.identity = service.identity();
        c.prefixKey = "bench-" + run + "-" + std::to_string(k);
        c.parentKey = parent;
        c.tokenBegin = begin;
        c.tokens =
            std::span(ids).subspan(static_cast<size_t>(begin), static_cast<size_t>(end - begin));
        c.tensors = &tensors;
        auto saved = store.save(c, keys);
        if (!saved)
            return fail(saved.error());
        files.push_back(store.pathOf(*saved));
        keys.push_back(c.prefixKey);
        parent = c.prefixKey;
    }
    if (auto dropped = storage::dropFromPageCache(files); !dropped)
        return fail(dropped.error());
    auto disk = storage::timeSequentialRead(files);
    if (!disk)
        return fail(disk.error());
    if (auto dropped = storage::dropFromPageCache(files); !dropped)
        return fail(dropped.error());
    const auto t0 = std::chrono::steady_clock::now();
    auto restored = store.restore(parent, service.identity());
    if (!restored)
        return fail(restored.error());
    const double readSeconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const uint64_t restoredBytes = restored->bytesRead;
    auto imported = engine.importState(std::move(restored->tokens), std::move(restored->tensors));
    if (!imported)
        return fail(imported.error());
    const double totalSeconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double diskMBps = disk->megabytesPerSecond();
    const double read = static_cast<double>(restoredBytes) / readSeconds / 1e6;
    const double whole = static_cast<double>(restoredBytes) / totalSeconds / 1e6;
    std::printf(
        "{\"tokens\":%lld,\"links\":%lld,\"bytes\":%llu,\"disk_read_MBps\":%.0f,"
        "\"restore_read_verify_MBps\":%.0f,\"restore_into_engine_MBps\":%.0f,"
        "\"ratio_read_verify\":%.2f,\"ratio_into_engine\":%.2f,\"backend\":\"%s\"}\n",
        static_cast<long long>(tokens), static_cast<long long>(links),
        static_cast<unsigned long long>(disk->bytes), diskMBps, read, whole, read / diskMBps,
        whole / diskMBps, engine.backendName().c_str());
    (void)store.drop(keys.front());
    return 0;
}

int runOnService(SessionService& service, const std::string& command, const Parsed& p) {
    const auto& args = p.positional;
    auto need = [&](size_t n) { return args.size() >= n; };
    auto id = [&](size_t i) { return number(args[i], "an id"); };
    if (command == "new" && need(2)) {
        auto s = service.createSession(args[1]);
        if (!s)
            return fail(s.error());
        std::printf("%lld\n", static_cast<long long>(s->id));
        return 0;
    }
    if (command == "list") {
        auto list = service.listSessions();
        if (!list)
            return fail(list.error());
        for (const auto& s : *list)
            std::printf("%lld\t%s\n", static_cast<long long>(s.id), s.name.c_str());
        return 0;
    }
    if (command == "bench")
        return bench(service, p);
    if (!need(2))
        return std::fprintf(stderr, "%s", kUsage), 2;
    auto first = id(1);
    if (!first)
        return fail(first.error());
    if (command == "add" && need(3)) {
        for (size_t i = 2; i < args.size(); ++i) {
            auto added = service.addSource(*first, args[i]);
            if (!added)
                return fail(added.error());
            std::printf("source %lld: %s (%s, %lld tokens)\n", static_cast<long long>(added->id),
                        added->displayName.c_str(), added->kind.c_str(),
                        static_cast<long long>(added->tokenCount));
        }
        return 0;
    }
    if (command == "ask" && need(3)) {
        AskOptions options;
        if (auto it = p.options.find("max-tokens"); it != p.options.end()) {
            auto v = number(it->second, "--max-tokens");
            if (!v)
                return fail(v.error());
            options.generation.maxTokens = *v;
        }
        if (auto it = p.options.find("temperature"); it != p.options.end())
            options.generation.sampling.temperature = std::stof(it->second);
        if (auto it = p.options.find("seed"); it != p.options.end()) {
            auto v = number(it->second, "--seed");
            if (!v)
                return fail(v.error());
            options.generation.sampling.seed = static_cast<uint64_t>(*v);
        }
        std::string question = args[2];
        for (size_t i = 3; i < args.size(); ++i)
            question += " " + args[i];
        auto answer = service.ask(*first, question, options, consoleControl());
        if (!answer)
            return fail(answer.error());
        printStats(*answer);
        return 0;
    }
    if (command == "prepare") {
        auto r = service.prepare(*first, consoleControl());
        if (!r)
            return fail(r.error());
        std::printf("%lld tokens: %lld reused (%s), %lld prefilled in %.2f s\n",
                    static_cast<long long>(r->contextTokens),
                    static_cast<long long>(r->reusedTokens), r->reusedFrom.c_str(),
                    static_cast<long long>(r->prefilledTokens), r->seconds);
        return 0;
    }
    if (command == "show") {
        auto d = service.details(*first);
        if (!d)
            return fail(d.error());
        std::printf("session %lld: %s\nsources:\n", static_cast<long long>(d->session.id),
                    d->session.name.c_str());
        for (const auto& s : d->sources)
            std::printf("  [%lld] #%lld %s %s (%s, %lld tokens)\n",
                        static_cast<long long>(s.position), static_cast<long long>(s.id),
                        s.enabled ? "on " : "off", s.displayName.c_str(), s.kind.c_str(),
                        static_cast<long long>(s.tokenCount));
        std::printf("messages:\n");
        for (const auto& m : d->messages)
            std::printf("  %s: %s\n", m.role.c_str(), m.content.c_str());
        return 0;
    }
    if (command == "export") {
        auto it = p.options.find("format");
        auto text = service.exportSession(*first, it == p.options.end() ? "markdown" : it->second);
        if (!text)
            return fail(text.error());
        std::fwrite(text->data(), 1, text->size(), stdout);
        return 0;
    }
    if (command == "enable" || command == "disable") {
        if (auto s = service.setSourceEnabled(*first, command == "enable"); !s)
            return fail(s.error());
        return 0;
    }
    if (command == "move" && need(3)) {
        auto pos = id(2);
        if (!pos)
            return fail(pos.error());
        if (auto s = service.moveSource(*first, *pos); !s)
            return fail(s.error());
        return 0;
    }
    std::fprintf(stderr, "%s", kUsage);
    return 2;
}

}  // namespace

int runSessionCommand(const QStringList& args) {
    const Parsed p = parse(args);
    if (p.positional.empty() || args.contains(QStringLiteral("--help"))) {
        std::fprintf(p.positional.empty() ? stderr : stdout, "%s", kUsage);
        return p.positional.empty() ? 2 : 0;
    }
    const fs::path data = dataDir(p);
    auto model = modelDir(p, data);
    if (!model)
        return fail(model.error());
    ServiceOptions options;
    options.dataDir = data;
    options.modelDir = *model;
    auto service = SessionService::open(options);
    if (!service)
        return fail(service.error());
    return runOnService(**service, p.positional.front(), p);
}

}  // namespace folio::cli
