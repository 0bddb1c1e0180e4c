// SPDX-License-Identifier: GPL-3.0-or-later
// folio-engine: the engine's command-line tool (no Qt).
//   folio-engine check-golden DIR [--backend cpu|cuda] [--kda auto|chunked|recurrent] [--threads N]
//   folio-engine info DIR
//   folio-engine make-model --preset demo|tiny --out DIR [--seed N]
//   folio-engine generate DIR --prompt-ids 1,2,3 [--max-tokens N] [--temperature T] [--top-k K]
//                         [--top-p P] [--repetition-penalty R] [--seed S] [--backend cpu|cuda]
//   folio-engine demo [--max-tokens N]
//   folio-engine tokenize --tokenizer DIR (--text S | --text-file F) [--chat] [--pieces]
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "inference/engine.h"
#include "inference/golden_check.h"
#include "inference/model_builder.h"
#include "inference/sampler.h"
#if FOLIO_HAVE_TOKENIZER
#include "tokenize_command.h"
#endif
#include "tool_logging.h"

namespace {

using namespace folio;
using namespace folio::inference;

std::atomic<bool> gCancel{false};

void onSignal(int) {
    gCancel.store(true);
}

constexpr const char* kUsage = R"(usage:
  folio-engine check-golden DIR [--backend cpu|cuda] [--kda auto|chunked|recurrent] [--threads N]
  folio-engine info DIR
  folio-engine make-model --preset demo|tiny --out DIR [--seed N]
  folio-engine generate DIR --prompt-ids 1,2,3 [--max-tokens N] [--temperature T] [--top-k K]
                            [--top-p P] [--repetition-penalty R] [--seed S] [--backend cpu|cuda]
  folio-engine demo [--max-tokens N]
  folio-engine tokenize --tokenizer DIR (--text S | --text-file F) [--chat] [--pieces]
options for every command: --verbose (debug log on the console)
)";

struct Args {
    std::vector<std::string> positional;
    std::map<std::string, std::string> options;
    std::set<std::string> flags;  // options without a value: --chat, --pieces
    bool verbose = false;
};

std::optional<Args> parseArgs(int argc, char** argv) {
    Args args;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--verbose") {
            args.verbose = true;
        } else if (a == "--chat" || a == "--pieces") {
            args.flags.insert(a.substr(2));
        } else if (a.rfind("--", 0) == 0) {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "folio-engine: option %s needs a value\n", a.c_str());
                return std::nullopt;
            }
            args.options[a.substr(2)] = argv[++i];
        } else {
            args.positional.push_back(a);
        }
    }
    return args;
}

int fail(const Error& error) {
    std::fprintf(stderr, "folio-engine: %s\n", error.message.c_str());
    return error.code == ErrorCode::Cancelled ? 130 : 1;
}

int usageError(const std::string& message) {
    std::fprintf(stderr, "folio-engine: %s\n%s", message.c_str(), kUsage);
    return 2;
}

template <typename T>
bool parseNumber(const Args& args, const std::string& name, T& out) {
    auto it = args.options.find(name);
    if (it == args.options.end())
        return true;
    try {
        size_t used = 0;
        if constexpr (std::is_floating_point_v<T>)
            out = static_cast<T>(std::stod(it->second, &used));
        else
            out = static_cast<T>(std::stoll(it->second, &used));
        return used == it->second.size();
    } catch (const std::exception&) {
        return false;
    }
}

std::optional<EngineOptions> engineOptions(const Args& args) {
    EngineOptions o;
    if (auto it = args.options.find("backend"); it != args.options.end()) {
        if (it->second == "cpu")
            o.backend = BackendKind::Cpu;
        else if (it->second == "cuda")
            o.backend = BackendKind::Cuda;
        else
            return std::nullopt;
    }
    if (auto it = args.options.find("kda"); it != args.options.end()) {
        if (it->second == "auto")
            o.kdaAlgorithm = KdaAlgorithm::Auto;
        else if (it->second == "chunked")
            o.kdaAlgorithm = KdaAlgorithm::Chunked;
        else if (it->second == "recurrent")
            o.kdaAlgorithm = KdaAlgorithm::Recurrent;
        else
            return std::nullopt;
    }
    if (!parseNumber(args, "threads", o.threads))
        return std::nullopt;
    return o;
}

int checkGolden(const Args& args) {
    if (args.positional.size() != 1)
        return usageError("check-golden needs one folder");
    auto options = engineOptions(args);
    if (!options)
        return usageError("invalid --backend, --kda or --threads");
    auto report = runGoldenCheck(args.positional[0], *options);
    if (!report)
        return fail(report.error());
    std::printf("%s\n", report->toJson().c_str());
    return report->pass() ? 0 : 1;
}

int info(const Args& args) {
    if (args.positional.size() != 1)
        return usageError("info needs one folder");
    auto engine = Engine::open(args.positional[0]);
    if (!engine)
        return fail(engine.error());
    const ModelConfig& c = (*engine)->config();
    std::printf(
        "{\"layers\":%lld,\"kda_layers\":%lld,\"mla_layers\":%lld,\"hidden\":%lld,"
        "\"vocab\":%lld,\"experts\":%lld,\"experts_per_token\":%lld,\"backend\":\"%s\"}\n",
        static_cast<long long>(c.numLayers), static_cast<long long>(c.countLayers(LayerKind::Kda)),
        static_cast<long long>(c.countLayers(LayerKind::Mla)), static_cast<long long>(c.hiddenSize),
        static_cast<long long>(c.vocabSize), static_cast<long long>(c.numExperts),
        static_cast<long long>(c.numExpertsPerToken), (*engine)->backendName().c_str());
    return 0;
}

int makeModel(const Args& args) {
    auto preset = args.options.find("preset");
    auto out = args.options.find("out");
    if (preset == args.options.end() || out == args.options.end())
        return usageError("make-model needs --preset and --out");
    uint64_t seed = 1234;
    if (!parseNumber(args, "seed", seed))
        return usageError("invalid --seed");
    auto json = presetConfigJson(preset->second);
    if (!json)
        return fail(json.error());
    if (auto status = writeRandomModel(out->second, *json, seed); !status)
        return fail(status.error());
    std::printf("wrote the %s model (random weights, seed %llu) to %s\n", preset->second.c_str(),
                static_cast<unsigned long long>(seed), out->second.c_str());
    return 0;
}

std::optional<std::vector<int32_t>> parseIds(const std::string& text) {
    std::vector<int32_t> ids;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t comma = text.find(',', pos);
        std::string part =
            text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        try {
            size_t used = 0;
            long long v = std::stoll(part, &used);
            if (used != part.size() || v < INT32_MIN || v > INT32_MAX)
                return std::nullopt;
            ids.push_back(static_cast<int32_t>(v));
        } catch (const std::exception&) {
            return std::nullopt;
        }
        if (comma == std::string::npos)
            break;
        pos = comma + 1;
    }
    if (ids.empty())
        return std::nullopt;
    return ids;
}

// Prefills the prompt, then samples up to maxTokens, streaming ids to stdout.
int runGeneration(const std::filesystem::path& modelDir, const std::vector<int32_t>& prompt,
                  const EngineOptions& options, const SamplingOptions& sampling,
                  int64_t maxTokens) {
    auto engine = Engine::open(modelDir, options);
    if (!engine)
        return fail(engine.error());
    Engine& e = **engine;
    auto sequence = e.newSequence();
    if (!sequence)
        return fail(sequence.error());
    PrefillOptions prefill;
    prefill.cancel = &gCancel;
    prefill.onProgress = [](const PrefillProgress& p) {
        std::fprintf(stderr, "\rprefill %lld/%lld tokens, %.0f tokens/s",
                     static_cast<long long>(p.done), static_cast<long long>(p.total),
                     p.tokensPerSecond());
    };
    const auto start = std::chrono::steady_clock::now();
    auto logits = e.prefill(*sequence, prompt, prefill);
    std::fprintf(stderr, "\n");
    if (!logits)
        return fail(logits.error());
    const std::chrono::duration<double> prefillTime = std::chrono::steady_clock::now() - start;

    Sampler sampler(sampling);
    std::vector<float> current = logits->values;
    const auto decodeStart = std::chrono::steady_clock::now();
    int64_t produced = 0;
    const auto eos = e.config().eosTokenId;
    std::printf("[");
    for (; produced < maxTokens && !gCancel.load(); ++produced) {
        const int32_t token = sampler.sample(current, sequence->tokens());
        std::printf("%s%d", produced ? ", " : "", token);
        std::fflush(stdout);
        if (eos && token == *eos) {
            ++produced;
            break;
        }
        auto next = e.decode(*sequence, token);
        if (!next)
            return fail(next.error());
        current = std::move(next->values);
    }
    std::printf("]\n");
    std::fflush(stdout);
    const std::chrono::duration<double> decodeTime = std::chrono::steady_clock::now() - decodeStart;
    std::fprintf(stderr,
                 "backend: %s\nprompt: %zu tokens in %.3f s (%.1f tokens/s)\n"
                 "generated: %lld tokens in %.3f s (%.1f tokens/s)\n",
                 e.backendName().c_str(), prompt.size(), prefillTime.count(),
                 static_cast<double>(prompt.size()) / std::max(prefillTime.count(), 1e-9),
                 static_cast<long long>(produced), decodeTime.count(),
                 static_cast<double>(produced) / std::max(decodeTime.count(), 1e-9));
    return gCancel.load() ? 130 : 0;
}

std::optional<SamplingOptions> samplingOptions(const Args& args) {
    SamplingOptions s;
    if (!parseNumber(args, "temperature", s.temperature) || !parseNumber(args, "top-k", s.topK) ||
        !parseNumber(args, "top-p", s.topP) ||
        !parseNumber(args, "repetition-penalty", s.repetitionPenalty) ||
        !parseNumber(args, "seed", s.seed))
        return std::nullopt;
    if (auto status = validate(s); !status) {
        std::fprintf(stderr, "folio-engine: %s\n", status.error().message.c_str());
        return std::nullopt;
    }
    return s;
}

int generate(const Args& args) {
    if (args.positional.size() != 1)
        return usageError("generate needs one model folder");
    auto ids = args.options.find("prompt-ids");
    if (ids == args.options.end())
        return usageError("generate needs --prompt-ids");
    auto prompt = parseIds(ids->second);
    if (!prompt)
        return usageError("--prompt-ids must be comma-separated integers");
    auto options = engineOptions(args);
    auto sampling = samplingOptions(args);
    int64_t maxTokens = 32;
    if (!options || !sampling || !parseNumber(args, "max-tokens", maxTokens) || maxTokens < 0)
        return usageError("invalid option value");
    return runGeneration(args.positional[0], *prompt, *options, *sampling, maxTokens);
}

int demo(const Args& args) {
    int64_t maxTokens = 48;
    if (!parseNumber(args, "max-tokens", maxTokens) || maxTokens < 0)
        return usageError("invalid --max-tokens");
    // The installed or built demo model, else one written to the data folder on first use.
    auto located = locateDemoModel(tools::dataFolder() / "models" / "demo");
    if (!located)
        return fail(located.error());
    const std::filesystem::path folder = *located;
    std::fprintf(stderr, "Folio demo model (random weights: its tokens are not meaningful) in %s\n",
                 folder.string().c_str());
    std::vector<int32_t> prompt;
    for (int i = 0; i < 200; ++i)
        prompt.push_back((i * 37 + 11) % 1000);
    SamplingOptions sampling;
    sampling.temperature = 0.8f;
    sampling.topK = 40;
    sampling.topP = 0.95f;
    sampling.seed = 7;
    return runGeneration(folder, prompt, EngineOptions{}, sampling, maxTokens);
}

#if FOLIO_HAVE_TOKENIZER
int tokenize(const Args& args) {
    if (!args.positional.empty())
        return usageError("tokenize takes no positional arguments");
    tools::TokenizeRequest request;
    auto dir = args.options.find("tokenizer");
    if (dir == args.options.end())
        return usageError("tokenize needs --tokenizer DIR");
    request.tokenizerDir = dir->second;
    if (auto it = args.options.find("text"); it != args.options.end())
        request.text = it->second;
    if (auto it = args.options.find("text-file"); it != args.options.end())
        request.textFile = it->second;
    if (request.text.has_value() == request.textFile.has_value())
        return usageError("tokenize needs exactly one of --text and --text-file");
    request.chat = args.flags.count("chat") > 0;
    request.pieces = args.flags.count("pieces") > 0;
    auto json = tools::runTokenize(request);
    if (!json)
        return fail(json.error());
    std::printf("%s\n", json->c_str());
    return 0;
}
#else
int tokenize(const Args&) {
    return usageError("this build has no tokenizer (it was configured without ICU)");
}
#endif

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "%s", kUsage);
        return 2;
    }
    const std::string command = argv[1];
    if (command == "--help" || command == "-h" || command == "help") {
        std::printf("%s", kUsage);
        return 0;
    }
    auto args = parseArgs(argc, argv);
    if (!args)
        return 2;
    folio::tools::initLogging("folio-engine", args->verbose);
    std::signal(SIGINT, onSignal);
    if (command == "check-golden")
        return checkGolden(*args);
    if (command == "info")
        return info(*args);
    if (command == "make-model")
        return makeModel(*args);
    if (command == "generate")
        return generate(*args);
    if (command == "demo")
        return demo(*args);
    if (command == "tokenize")
        return tokenize(*args);
    return usageError("unknown command \"" + command + "\"");
}
