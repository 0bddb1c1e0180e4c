// SPDX-License-Identifier: GPL-3.0-or-later
// Storage without the engine's answers: the byte tokenizer of generated models loads through the
// real loader, the catalog keeps source order, an old schema migrates, the data directory lock
// excludes a second opener, snapshot chains round-trip and a flipped byte is detected; a chain of
// large links (many reads in flight, checksums on the worker thread) restores exactly and a
// damaged byte anywhere is blamed on the first damaged link.
#include <QtTest>

#include <fstream>

#include "inference/tokenizer/chat_format.h"
#include "inference/tokenizer/kimi_tokenizer_files.h"
#include "session_test_support.h"
#include "storage/schema.h"
#include "storage/storage.h"

using namespace folio;
using namespace folio::storage;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const char* name) {
    const fs::path dir = fs::path(FOLIO_TEST_OUTPUT_DIR) / "session_storage" / name;
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

std::vector<inference::StateTensor> fakeState(int64_t rows, float base) {
    std::vector<inference::StateTensor> t;
    t.push_back({"kda.0.state", {2, 4, 4}, std::vector<float>(32, base)});
    t.push_back({"kda.0.conv", {3, 3, 8}, std::vector<float>(72, base + 1)});
    inference::StateTensor mla{"mla.1.cache", {rows, 5}, {}};
    for (int64_t i = 0; i < rows * 5; ++i)
        mla.data.push_back(base + static_cast<float>(i));
    t.push_back(mla);
    return t;
}

}  // namespace

class SessionStorageTest : public QObject {
    Q_OBJECT

  private slots:
    void byteTokenizerLoadsThroughTheRealLoader() {
        const fs::path model = fs::path(FOLIO_TEST_OUTPUT_DIR) / "session-tiny-model";
        auto made = session::testing::ensureTinyModel(model);
        QVERIFY2(made.ok(), made.ok() ? "" : made.error().message.c_str());
        auto tok = tokenizer::loadKimiTokenizer(model);
        QVERIFY2(tok.ok(), tok.ok() ? "" : tok.error().message.c_str());
        QCOMPARE(tok->vocabularySize(), 640);
        QCOMPARE(tok->specialId("[BOS]").value_or(-1), 384);
        QCOMPARE(tok->specialId("<|im_end|>").value_or(-1), 386);
        QCOMPARE(tok->specialId("<|im_middle|>").value_or(-1), 401);
        QCOMPARE(tok->specialId("[PAD]").value_or(-1), 639);
        const std::string text = "The parties agree: terminate within 30 days — café.";
        auto ids = tok->encode(text);
        QVERIFY(ids.ok());
        QVERIFY(ids->size() < text.size());  // merges apply
        for (int32_t id : *ids)
            QVERIFY(id < 384);
        auto back = tok->decode(*ids);
        QVERIFY(back.ok());
        QCOMPARE(*back, text);
        QVERIFY(tokenizer::KimiChatFormat::create(*tok).ok());
        // Deterministic: writing again gives the same bytes.
        const fs::path again = scratch("tokenizer-again");
        QVERIFY(inference::writeByteTokenizer(again, 640).ok());
        std::ifstream a(model / "tiktoken.model"), b(again / "tiktoken.model");
        QVERIFY(
            std::equal(std::istreambuf_iterator<char>(a), {}, std::istreambuf_iterator<char>(b)));
        QVERIFY(!inference::writeByteTokenizer(again, 300).ok());
    }

    void catalogKeepsPositions() {
        auto storage = Storage::open({scratch("catalog"), 1 << 30});
        QVERIFY(storage.ok());
        Catalog& c = (*storage)->catalog();
        auto s = c.createSession("papers");
        QVERIFY(s.ok());
        std::vector<int64_t> ids;
        for (int i = 0; i < 4; ++i) {
            SourceRow row;
            row.sessionId = s->id;
            row.kind = "text";
            row.displayName = cat("doc", i);
            row.contentHash = cat("h", i);
            auto added = c.addSource(row, "text", {{0, "lines:1:1:doc", 0, 4, 0, 1}});
            QVERIFY(added.ok());
            QCOMPARE(added->position, int64_t(i));
            ids.push_back(added->id);
        }
        QVERIFY(c.moveSource(ids[3], 0).ok());
        QVERIFY(c.removeSource(ids[1]).ok());
        auto rows = c.sources(s->id);
        QVERIFY(rows.ok());
        QCOMPARE(rows->size(), size_t(3));
        QCOMPARE(rows->at(0).displayName, std::string("doc3"));
        QCOMPARE(rows->at(1).displayName, std::string("doc0"));
        QCOMPARE(rows->at(2).displayName, std::string("doc2"));
        for (size_t i = 0; i < rows->size(); ++i)
            QCOMPARE(rows->at(i).position, int64_t(i));
        QVERIFY(!c.session(9999).ok());
        QCOMPARE(c.session(9999).error().code, ErrorCode::NotFound);
    }

    void olderSchemaMigrates() {
        const fs::path dir = scratch("migrate");
        {
            // A version 1 database as Folio 0.1 development builds wrote it.
            auto db = Database::open(dir / "folio.db");
            QVERIFY(db.ok());
            QVERIFY((*db)
                        ->exec(R"sql(
CREATE TABLE sessions (id INTEGER PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL,
                       updated_at INTEGER NOT NULL);
CREATE TABLE sources (id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, enabled INTEGER NOT NULL DEFAULT 1, kind TEXT NOT NULL,
    display_name TEXT NOT NULL, origin TEXT NOT NULL, content_hash TEXT NOT NULL,
    token_count INTEGER NOT NULL DEFAULT 0, ingest_settings TEXT NOT NULL DEFAULT '{}',
    added_at INTEGER NOT NULL);
CREATE INDEX sources_by_session ON sources(session_id, position);
CREATE TABLE source_texts (source_id INTEGER PRIMARY KEY REFERENCES sources(id) ON DELETE CASCADE,
                           text BLOB NOT NULL);
CREATE TABLE messages (id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE, role TEXT NOT NULL,
    content TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX messages_by_session ON messages(session_id, id);
INSERT INTO sessions VALUES (1, 'old session', 100, 100);
INSERT INTO sources VALUES (1, 1, 0, 1, 'text', 'a.txt', '/a.txt', 'abc', 12, '{}', 100);
INSERT INTO source_texts VALUES (1, 'hello');
INSERT INTO messages VALUES (1, 1, 'user', 'what?', 100);
PRAGMA user_version = 1;
)sql")
                        .ok());
        }
        auto storage = Storage::open({dir, 1 << 30});
        QVERIFY2(storage.ok(), storage.ok() ? "" : storage.error().message.c_str());
        QCOMPARE((*storage)->database().userVersion().value(), kSchemaVersion);
        auto sessions = (*storage)->catalog().sessions();
        QVERIFY(sessions.ok());
        QCOMPARE(sessions->size(), size_t(1));
        QCOMPARE(sessions->front().name, std::string("old session"));
        auto messages = (*storage)->catalog().messages(1);
        QVERIFY(messages.ok());
        QCOMPARE(messages->front().content, std::string("what?"));
        QCOMPARE(messages->front().stats.reusedTokens, int64_t(0));
        auto source = (*storage)->catalog().source(1);
        QVERIFY(source.ok());
        QCOMPARE(source->tokenCount, int64_t(12));
        QCOMPARE(source->pageCount, int64_t(0));
        QVERIFY((*storage)->snapshots().all().ok());
        // A database from a newer Folio is refused and left alone.
        storage->reset();
        {
            auto db = Database::open(dir / "folio.db");
            QVERIFY((*db)->setUserVersion(kSchemaVersion + 5).ok());
        }
        auto newer = Storage::open({dir, 1 << 30});
        QVERIFY(!newer.ok());
        QVERIFY(newer.error().message.find("newer") != std::string::npos);
    }

    void dataDirectoryLockExcludesASecondOpener() {
        const fs::path dir = scratch("lock");
        auto first = Storage::open({dir, 1 << 30});
        QVERIFY(first.ok());
        auto second = Storage::open({dir, 1 << 30});
        QVERIFY(!second.ok());
        QVERIFY2(
            second.error().message.find("in use by another Folio process") != std::string::npos,
            second.error().message.c_str());
        first->reset();
        QVERIFY(Storage::open({dir, 1 << 30}).ok());
    }

    void snapshotChainRoundTripsAndDetectsDamage() {
        const fs::path dir = scratch("chain");
        auto storage = Storage::open({dir, 1 << 30});
        QVERIFY(storage.ok());
        SnapshotStore& store = (*storage)->snapshots();
        const SnapshotIdentity id{"model-a", "tok-a"};
        std::vector<int32_t> tokens;
        for (int i = 0; i < 30; ++i)
            tokens.push_back(i * 7 % 300);
        // Full state after 10 and after 30 tokens; the second link stores rows 10..29 only.
        auto whole10 = fakeState(10, 1.0f);
        auto whole30 = fakeState(30, 1.0f);
        for (auto& t : whole30)
            if (t.name != "mla.1.cache")
                std::fill(t.data.begin(), t.data.end(), 9.0f);
        auto tail = whole30;
        tail[2].shape[0] = 20;
        tail[2].data.erase(tail[2].data.begin(), tail[2].data.begin() + 50);
        SnapshotContent a{id, "keya", "", 0, std::span(tokens).first(10), &whole10};
        SnapshotContent b{id, "keyb", "keya", 10, std::span(tokens).subspan(10), &tail};
        QVERIFY(store.save(a).ok());
        auto savedB = store.save(b);
        QVERIFY(savedB.ok());
        auto restored = store.restore("keyb", id);
        QVERIFY2(restored.ok(), restored.ok() ? "" : restored.error().message.c_str());
        QCOMPARE(restored->tokens, tokens);
        QCOMPARE(restored->tensors.size(), whole30.size());
        for (size_t i = 0; i < whole30.size(); ++i) {
            QCOMPARE(restored->tensors[i].shape, whole30[i].shape);
            QCOMPARE(restored->tensors[i].data, whole30[i].data);
        }
        // Another identity is refused.
        QVERIFY(!readSnapshotChain(std::vector<fs::path>{store.pathOf(*store.find("keya").value())},
                                   {"model-b", "tok-a"})
                     .ok());
        // Flip one byte of the child's MLA rows: detected, the child dropped, the parent kept.
        const fs::path file = store.pathOf(*savedB);
        {
            std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
            f.seekg(-7, std::ios::end);
            char c = 0;
            f.read(&c, 1);
            f.seekp(-7, std::ios::end);
            c = static_cast<char>(c ^ 0x10);
            f.write(&c, 1);
        }
        auto damaged = store.restore("keyb", id);
        QVERIFY(!damaged.ok());
        QVERIFY2(damaged.error().message.find("checksum") != std::string::npos,
                 damaged.error().message.c_str());
        QVERIFY(!store.find("keyb").value().has_value());
        QVERIFY(!fs::exists(file));
        QVERIFY(store.find("keya").value().has_value());
        QVERIFY(store.restore("keya", id).ok());
    }

    void largeChainRestoresAndBlamesTheFirstDamagedLink() {
        const fs::path dir = scratch("large-chain");
        const SnapshotIdentity id{"model-a", "tok-a"};
        // Three links of 11000 rows x 512 floats (~21.5 MiB each): several 8 MiB reads per
        // section and more than the 64 MiB allowed in flight in all.
        constexpr int64_t kRows = 11000, kWidth = 512, kLinks = 3;
        std::vector<int32_t> tokens(static_cast<size_t>(kRows * kLinks));
        for (size_t i = 0; i < tokens.size(); ++i)
            tokens[i] = static_cast<int32_t>(i * 31 % 1000);
        std::vector<fs::path> files;
        std::vector<float> allRows;
        std::string parent;
        for (int64_t k = 0; k < kLinks; ++k) {
            std::vector<inference::StateTensor> t;
            t.push_back({"kda.0.state", {2, 4, 4}, std::vector<float>(32, float(k))});
            t.push_back({"kda.0.conv", {3, 3, 8}, std::vector<float>(72, float(k) + 0.5f)});
            inference::StateTensor mla{"mla.1.cache", {kRows, kWidth}, {}};
            mla.data.resize(static_cast<size_t>(kRows * kWidth));
            for (size_t i = 0; i < mla.data.size(); ++i)
                mla.data[i] = static_cast<float>((i * 2654435761u + static_cast<size_t>(k)) % 9973);
            allRows.insert(allRows.end(), mla.data.begin(), mla.data.end());
            t.push_back(std::move(mla));
            const std::string key = "big" + std::to_string(k);
            SnapshotContent c{id,
                              key,
                              parent,
                              k * kRows,
                              std::span(tokens).subspan(static_cast<size_t>(k * kRows),
                                                        static_cast<size_t>(kRows)),
                              &t};
            files.push_back(dir / (key + ".fsnap"));
            QVERIFY(writeSnapshotFile(files.back(), c).ok());
            parent = key;
        }
        int bad = -7;
        auto restored = readSnapshotChain(files, id, &bad);
        QVERIFY2(restored.ok(), restored.ok() ? "" : restored.error().message.c_str());
        QCOMPARE(restored->tokens, tokens);
        QCOMPARE(restored->tensors.size(), size_t{3});
        QCOMPARE(restored->tensors[0].data, std::vector<float>(32, 2.0f));
        QCOMPARE(restored->tensors[2].shape, (std::vector<int64_t>{kRows * kLinks, kWidth}));
        QVERIFY(restored->tensors[2].data == allRows);

        auto flip = [](const fs::path& file, std::streamoff at,
                       std::ios::seekdir from = std::ios::end) {
            std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
            f.seekg(at, from);
            char c = 0;
            f.read(&c, 1);
            f.seekp(at, from);
            c = static_cast<char>(c ^ 0x01);
            f.write(&c, 1);
        };
        // A byte in the middle of the last link's rows (a later chunk of the section).
        flip(files[2], -(10 << 20));
        restored = readSnapshotChain(files, id, &bad);
        QVERIFY(!restored.ok());
        QCOMPARE(bad, 2);
        QVERIFY2(restored.error().message.find("checksum") != std::string::npos &&
                     restored.error().message.find(files[2].string()) != std::string::npos &&
                     restored.error().message.find("mla.1.cache") != std::string::npos,
                 restored.error().message.c_str());
        // The last link's KDA state too (header, then token ids to 49152): named first.
        flip(files[2], 49152 + 10, std::ios::beg);
        restored = readSnapshotChain(files, id, &bad);
        QVERIFY(!restored.ok());
        QCOMPARE(bad, 2);
        QVERIFY2(restored.error().message.find("kda.0.state") != std::string::npos,
                 restored.error().message.c_str());
        // The first link's rows too: reading goes tensor by tensor, so the last link's KDA state
        // is checked before them, yet the first link is blamed, as reading in order would.
        flip(files[0], -(3 << 20));
        restored = readSnapshotChain(files, id, &bad);
        QVERIFY(!restored.ok());
        QCOMPARE(bad, 0);
        QVERIFY2(restored.error().message.find(files[0].string()) != std::string::npos &&
                     restored.error().message.find("mla.1.cache") != std::string::npos,
                 restored.error().message.c_str());
        // The first link's token ids (the section after the header's 4096 bytes).
        flip(files[0], 4096 + 100, std::ios::beg);
        restored = readSnapshotChain(files, id, &bad);
        QVERIFY(!restored.ok());
        QCOMPARE(bad, 0);
        QVERIFY2(restored.error().message.find("token ids") != std::string::npos,
                 restored.error().message.c_str());
        fs::remove_all(dir);
    }

    void diskBudgetEvictsLeastRecentlyUsed() {
        const fs::path dir = scratch("budget");
        auto storage = Storage::open({dir, 1 << 30});
        QVERIFY(storage.ok());
        SnapshotStore& store = (*storage)->snapshots();
        const SnapshotIdentity id{"m", "t"};
        std::vector<int32_t> tokens(8, 1);
        auto state = fakeState(8, 2.0f);
        for (int i = 0; i < 4; ++i) {
            SnapshotContent c{id, cat("root", i), "", 0, tokens, &state};
            QVERIFY(store.save(c).ok());
        }
        QVERIFY(store.touch({"root0"}).ok());  // root0 is now the most recently used
        const int64_t one = store.find("root1").value()->sizeBytes;
        store.setDiskBudget(one * 2);
        QVERIFY(store.evictToBudget().ok());
        QVERIFY(store.totalBytes().value() <= one * 2);
        QVERIFY(store.find("root0").value().has_value());
        QVERIFY(store.find("root3").value().has_value());
        QVERIFY(!store.find("root1").value().has_value());
        QVERIFY(!store.find("root2").value().has_value());
    }
};

QTEST_GUILESS_MAIN(SessionStorageTest)
#include "test_session_storage.moc"
