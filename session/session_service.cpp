// SPDX-License-Identifier: GPL-3.0-or-later
#include "session_service.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QString>

#include <chrono>

#include "document_codec.h"
#include "identity.h"
#include "inference/tokenizer/kimi_tokenizer_files.h"
#include "ingest/source_ingest.h"

namespace folio::session {
namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

QString q(const std::string& s) {
    return QString::fromStdString(s);
}

}  // namespace

SessionService::~SessionService() = default;

Result<std::unique_ptr<SessionService>> SessionService::open(const ServiceOptions& options) {
    std::unique_ptr<SessionService> s(new SessionService(options, options.memoryBudgetBytes));
    FOLIO_ASSIGN_OR_RETURN(s->storage_,
                           storage::Storage::open({options.dataDir, options.diskBudgetBytes}));
    FOLIO_ASSIGN_OR_RETURN(s->identity_.modelId, modelIdentity(options.modelDir));
    auto tokenizerId = tokenizerIdentity(options.modelDir);
    if (!tokenizerId)
        return tokenizerId.error().withContext(
            "the model folder needs tiktoken.model and tokenizer_config.json");
    s->identity_.tokenizerId = *tokenizerId;
    FOLIO_ASSIGN_OR_RETURN(tokenizer::Tokenizer tok,
                           tokenizer::loadKimiTokenizer(options.modelDir));
    s->tokenizer_ = std::make_unique<tokenizer::Tokenizer>(std::move(tok));
    FOLIO_ASSIGN_OR_RETURN(tokenizer::KimiChatFormat chat,
                           tokenizer::KimiChatFormat::create(*s->tokenizer_));
    s->chat_ = std::make_unique<tokenizer::KimiChatFormat>(std::move(chat));
    FOLIO_ASSIGN_OR_RETURN(s->engine_, inference::Engine::open(options.modelDir, options.engine));
    if (s->tokenizer_->vocabularySize() > s->engine_->config().vocabSize)
        return makeError(ErrorCode::Format, "the tokenizer in ", options.modelDir.string(), " has ",
                         s->tokenizer_->vocabularySize(), " ids, more than the model's ",
                         s->engine_->config().vocabSize);
    return s;
}

Result<storage::SessionRow> SessionService::createSession(const std::string& name) {
    return storage_->catalog().createSession(name);
}

Result<std::vector<storage::SessionRow>> SessionService::listSessions() {
    return storage_->catalog().sessions();
}

Result<SessionDetails> SessionService::details(int64_t sessionId) {
    SessionDetails d;
    FOLIO_ASSIGN_OR_RETURN(d.session, storage_->catalog().session(sessionId));
    FOLIO_ASSIGN_OR_RETURN(d.sources, storage_->catalog().sources(sessionId));
    FOLIO_ASSIGN_OR_RETURN(d.messages, storage_->catalog().messages(sessionId));
    return d;
}

Status SessionService::renameSession(int64_t sessionId, const std::string& name) {
    return storage_->catalog().renameSession(sessionId, name);
}

Status SessionService::deleteSession(int64_t sessionId) {
    prompts_.erase(sessionId);
    return storage_->catalog().deleteSession(sessionId);
}

Result<storage::SourceRow> SessionService::addSource(int64_t sessionId,
                                                     const std::filesystem::path& path,
                                                     const ingest::IngestSettings& settings) {
    FOLIO_TRY(storage_->catalog().session(sessionId));
    FOLIO_ASSIGN_OR_RETURN(ingest::Document document,
                           ingest::ingestSource(path, settings, tokenizer_.get()));
    return addDocument(sessionId, document, settings);
}

Result<storage::SourceRow> SessionService::addDocument(int64_t sessionId,
                                                       const ingest::Document& document,
                                                       const ingest::IngestSettings& settings) {
    DocumentRows rows = rowsFromDocument(document, settings);
    rows.source.sessionId = sessionId;
    // The block's token count as the prompt will hold it (header and footer included).
    ingest::SourceInput input{&document, {}};
    ingest::AssembleOptions assemble;
    assemble.contextLength = engine_->config().modelMaxLength > 0
                                 ? engine_->config().modelMaxLength
                                 : ingest::kKimiLinearContextLength;
    assemble.reservedTokens = 0;
    FOLIO_ASSIGN_OR_RETURN(
        ingest::AssembledPrompt alone,
        ingest::assemblePrompt(*chat_, *tokenizer_, options_.systemText, {&input, 1}, assemble));
    rows.source.tokenCount = static_cast<int64_t>(alone.blocks.front().tokens.size());
    prompts_.erase(sessionId);
    return storage_->catalog().addSource(rows.source, rows.text, rows.segments);
}

Status SessionService::setSourceEnabled(int64_t sourceId, bool enabled) {
    FOLIO_ASSIGN_OR_RETURN(storage::SourceRow s, storage_->catalog().source(sourceId));
    prompts_.erase(s.sessionId);
    return storage_->catalog().setSourceEnabled(sourceId, enabled);
}

Status SessionService::moveSource(int64_t sourceId, int64_t position) {
    FOLIO_ASSIGN_OR_RETURN(storage::SourceRow s, storage_->catalog().source(sourceId));
    prompts_.erase(s.sessionId);
    return storage_->catalog().moveSource(sourceId, position);
}

Status SessionService::removeSource(int64_t sourceId) {
    FOLIO_ASSIGN_OR_RETURN(storage::SourceRow s, storage_->catalog().source(sourceId));
    prompts_.erase(s.sessionId);
    return storage_->catalog().removeSource(sourceId);
}

Result<const ingest::AssembledPrompt*> SessionService::assembled(int64_t sessionId) {
    FOLIO_ASSIGN_OR_RETURN(std::vector<storage::SourceRow> sources,
                           storage_->catalog().sources(sessionId));
    std::string signature;
    for (const storage::SourceRow& s : sources)
        if (s.enabled)
            signature += cat(s.id, ":", s.contentHash, ";");
    auto cached = prompts_.find(sessionId);
    if (cached != prompts_.end() && cached->second.signature == signature)
        return &cached->second.prompt;

    std::vector<ingest::Document> documents;
    for (const storage::SourceRow& s : sources) {
        if (!s.enabled)
            continue;
        FOLIO_ASSIGN_OR_RETURN(std::string text, storage_->catalog().sourceText(s.id));
        FOLIO_ASSIGN_OR_RETURN(std::vector<storage::SegmentRow> segments,
                               storage_->catalog().segments(s.id));
        auto document = documentFromRows(s, std::move(text), segments);
        if (!document)
            return document.error().withContext(cat("source \"", s.displayName, "\""));
        documents.push_back(std::move(document).value());
    }
    std::vector<ingest::SourceInput> inputs;
    for (size_t i = 0; i < documents.size(); ++i)
        inputs.push_back({&documents[i], {}});
    ingest::AssembleOptions assemble;
    if (engine_->config().modelMaxLength > 0)
        assemble.contextLength = engine_->config().modelMaxLength;
    assemble.reservedTokens =
        std::min<int64_t>(assemble.reservedTokens, assemble.contextLength / 8);
    FOLIO_ASSIGN_OR_RETURN(
        ingest::AssembledPrompt prompt,
        ingest::assemblePrompt(*chat_, *tokenizer_, options_.systemText, inputs, assemble));
    prompts_[sessionId] = CachedPrompt{signature, std::move(prompt)};
    return &prompts_[sessionId].prompt;
}

Result<ContextState> SessionService::context(int64_t sessionId, const RunControl& control) {
    FOLIO_ASSIGN_OR_RETURN(const ingest::AssembledPrompt* prompt, assembled(sessionId));
    ContextDeps deps{*engine_, storage_->snapshots(), resident_, identity_,
                     options_.writeSnapshots};
    return buildContext(deps, *prompt, control);
}

Result<PrepareResult> SessionService::prepare(int64_t sessionId, const RunControl& control) {
    const auto t0 = Clock::now();
    FOLIO_ASSIGN_OR_RETURN(ContextState state, context(sessionId, control));
    PrepareResult r;
    r.contextTokens = state.tokens;
    r.reusedTokens = state.reusedTokens;
    r.prefilledTokens = state.prefilledTokens;
    r.reusedFrom = state.reusedFrom;
    r.restoreSeconds = state.restoreSeconds;
    r.restoredBytes = state.restoredBytes;
    r.warnings = std::move(state.warnings);
    r.seconds = secondsSince(t0);
    return r;
}

Result<AskResult> SessionService::ask(int64_t sessionId, const std::string& question,
                                      const AskOptions& options, const RunControl& control) {
    const auto start = Clock::now();
    if (question.empty())
        return makeError(ErrorCode::InvalidArgument, "the question is empty");
    FOLIO_ASSIGN_OR_RETURN(std::vector<int32_t> questionIds,
                           ingest::questionTokens(*chat_, *tokenizer_, question));
    FOLIO_ASSIGN_OR_RETURN(ContextState state, context(sessionId, control));
    const int64_t limit = engine_->config().modelMaxLength;
    if (limit > 0 &&
        state.tokens + static_cast<int64_t>(questionIds.size()) + options.generation.maxTokens >
            limit)
        return makeError(ErrorCode::InvalidArgument, "the sources (", state.tokens,
                         " tokens), the question (", questionIds.size(),
                         " tokens) and the answer limit (", options.generation.maxTokens,
                         " tokens) exceed the model's context of ", limit, " tokens");
    // A question never changes the stored state: it runs on a fork.
    FOLIO_ASSIGN_OR_RETURN(inference::Sequence sequence, state.sequence->fork());
    FOLIO_ASSIGN_OR_RETURN(Generated generated,
                           generateAnswer(*engine_, sequence, questionIds, *chat_, *tokenizer_,
                                          options.generation, control, start));
    AskResult result;
    result.answer = std::move(generated.text);
    result.answerTokens = std::move(generated.tokens);
    result.cancelled = generated.cancelled;
    result.reusedFrom = state.reusedFrom;
    result.warnings = std::move(state.warnings);
    result.stats.promptTokens = state.tokens + static_cast<int64_t>(questionIds.size());
    result.stats.reusedTokens = state.reusedTokens;
    result.stats.prefilledTokens = state.prefilledTokens + static_cast<int64_t>(questionIds.size());
    result.stats.generatedTokens = static_cast<int64_t>(result.answerTokens.size());
    result.stats.timeToFirstTokenMs = generated.timeToFirstTokenSeconds * 1000.0;
    result.stats.tokensPerSecond = generated.decodeTokensPerSecond;
    if (options.saveMessages) {
        storage::MessageRow user;
        user.sessionId = sessionId;
        user.role = "user";
        user.content = question;
        FOLIO_TRY(storage_->catalog().addMessage(user));
        storage::MessageRow answer;
        answer.sessionId = sessionId;
        answer.role = "assistant";
        answer.content = result.answer;
        answer.stats = result.stats;
        FOLIO_ASSIGN_OR_RETURN(storage::MessageRow saved, storage_->catalog().addMessage(answer));
        result.messageId = saved.id;
    }
    return result;
}

Result<std::string> SessionService::exportSession(int64_t sessionId, const std::string& format) {
    FOLIO_ASSIGN_OR_RETURN(SessionDetails d, details(sessionId));
    if (format == "json") {
        QJsonObject root;
        root["id"] = static_cast<qint64>(d.session.id);
        root["name"] = q(d.session.name);
        root["created_at"] = static_cast<qint64>(d.session.createdAt);
        QJsonArray sources;
        for (const auto& s : d.sources) {
            QJsonObject o;
            o["position"] = static_cast<qint64>(s.position);
            o["enabled"] = s.enabled;
            o["kind"] = q(s.kind);
            o["name"] = q(s.displayName);
            o["origin"] = q(s.origin);
            o["content_hash"] = q(s.contentHash);
            o["tokens"] = static_cast<qint64>(s.tokenCount);
            sources.append(o);
        }
        root["sources"] = sources;
        QJsonArray messages;
        for (const auto& m : d.messages) {
            QJsonObject o;
            o["role"] = q(m.role);
            o["content"] = q(m.content);
            o["created_at"] = static_cast<qint64>(m.createdAt);
            if (m.role == "assistant") {
                QJsonObject st;
                st["prompt_tokens"] = static_cast<qint64>(m.stats.promptTokens);
                st["reused_tokens"] = static_cast<qint64>(m.stats.reusedTokens);
                st["prefilled_tokens"] = static_cast<qint64>(m.stats.prefilledTokens);
                st["generated_tokens"] = static_cast<qint64>(m.stats.generatedTokens);
                st["ttft_ms"] = m.stats.timeToFirstTokenMs;
                st["tokens_per_second"] = m.stats.tokensPerSecond;
                o["stats"] = st;
            }
            messages.append(o);
        }
        root["messages"] = messages;
        return QJsonDocument(root).toJson(QJsonDocument::Indented).toStdString();
    }
    if (format != "markdown")
        return makeError(ErrorCode::InvalidArgument, "unknown export format \"", format,
                         "\" (markdown, json)");
    std::string md = cat("# ", d.session.name, "\n\n## Sources\n\n");
    for (const auto& s : d.sources)
        md += cat(s.position + 1, ". ", s.displayName, " (", s.kind, ", ", s.tokenCount, " tokens",
                  s.enabled ? "" : ", disabled", ")\n");
    md += "\n## Conversation\n";
    for (const auto& m : d.messages) {
        md += cat("\n**", m.role == "user" ? "Question" : "Answer", ":** ", m.content, "\n");
        if (m.role == "assistant")
            md += cat("\n_", m.stats.promptTokens, " prompt tokens, ", m.stats.reusedTokens,
                      " reused, ", m.stats.prefilledTokens, " prefilled; first token after ",
                      static_cast<int64_t>(m.stats.timeToFirstTokenMs + 0.5), " ms_\n");
    }
    return md;
}

void SessionService::dropResident() {
    resident_.clear();
    prompts_.clear();
}

}  // namespace folio::session
