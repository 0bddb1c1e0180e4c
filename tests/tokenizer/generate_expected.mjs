// SPDX-License-Identifier: GPL-3.0-or-later
// Generates the tokenizer tests' expected outputs from independent implementations:
//   (a) BPE ids from js-tiktoken (cl100k_base and o200k_base ranks and patterns), and
//   (b) the pre-tokenizer pieces of Kimi's, cl100k_base's and o200k_base's patterns from Node's
//       own RegExp engine (the `v` flag for Kimi's class set differences).
//
// Usage (outside the repository, so node_modules never lands in it):
//   mkdir -p /tmp/tokgen && cd /tmp/tokgen && npm init -y && npm install js-tiktoken@1.0.21
//   node /path/to/tests/tokenizer/generate_expected.mjs [--export-ranks DIR]
// It reads data/corpus.json beside this script and rewrites, in data/:
//   expected_cl100k_base.json, expected_o200k_base.json   ids per case
//   cl100k_base.subset.tiktoken, o200k_base.subset.tiktoken  the ranks those ids need
//   expected_pieces.json                                  pieces per pattern per case
// --export-ranks DIR also writes the full cl100k_base.tiktoken and o200k_base.tiktoken there (for
// folio-tokenizer-bench); they are large and are never committed.
//
// Why a ranks subset is exact: BPE only ever asks "is this byte string a token, and with which
// rank?". js-tiktoken's rank map is wrapped so that every string it finds is recorded; a vocabulary
// made of exactly those strings (plus all 256 single bytes, which the C++ loader requires) answers
// every question the full vocabulary was asked identically, so any correct BPE gives the same ids.
//
// Regex semantics: tiktoken runs these patterns with Rust's regex crate, where \s is Unicode
// White_Space and (?i:'s) also matches U+017F. Node's \s differs on U+0085 and U+FEFF, so Kimi's
// pattern below spells \s as \p{White_Space} and its contractions with U+017F; the cl100k/o200k
// patterns are used exactly as js-tiktoken ships them, and the shared corpus avoids those three
// characters (they appear only in the Kimi-only cases).
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(join(process.cwd(), "package.json"));
const { Tiktoken } = require("js-tiktoken/lite");
const here = dirname(fileURLToPath(import.meta.url));
const dataDir = join(here, "data");

function loadRanks(name) {
    return require(`js-tiktoken/ranks/${name}`);
}

// ---- Patterns --------------------------------------------------------------------------------
const HAN = "\\p{Script=Han}";
const WS = "\\p{White_Space}";
const CONTRACTION = "(?:'[sS\\u017F]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const UPPERISH = `[[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]--${HAN}]`;
const LOWERISH = `[[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]--${HAN}]`;
const kimiPattern = [
    `[${HAN}]+`,
    `[^\\r\\n\\p{L}\\p{N}]?${UPPERISH}*${LOWERISH}+${CONTRACTION}?`,
    `[^\\r\\n\\p{L}\\p{N}]?${UPPERISH}+${LOWERISH}*${CONTRACTION}?`,
    "\\p{N}{1,3}",
    ` ?[^${WS}\\p{L}\\p{N}]+[\\r\\n]*`,
    `${WS}*[\\r\\n]+`,
    `${WS}+(?!\\P{White_Space})`,
    `${WS}+`,
].join("|");

function pieces(regex, text) {
    const out = [];
    let covered = 0;
    for (const m of text.matchAll(regex)) {
        if (m.index !== covered)
            throw new Error(`pattern skipped text at ${covered} in ${JSON.stringify(text)}`);
        out.push(m[0]);
        covered = m.index + m[0].length;
    }
    if (covered !== text.length)
        throw new Error(`pattern left text unmatched in ${JSON.stringify(text)}`);
    return out;
}

// ---- A seeded random corpus over characters chosen to stress the pattern's classes -----------
function rng(seed) {
    let s = seed >>> 0;
    return () => {
        s = (s + 0x6d2b79f5) >>> 0;
        let t = s;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

const alphabet = [
    ..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    ..."stmdlrevSTMDLREV''''",
    ..."0123456789",
    ..."      \t\n\n\r\r\u000b\u000c\u00a0\u3000\u2003\u2028",
    ...".,!?/-_\"()[]{}<>#@:;=+*&%$\\|~^`",
    ..."éÜßøñǅǈʰˆー々〆",
    ..."אกあア한д",
    "\u0301", "\u0903", "\u20dd", "\u0e31", "\u0308",
    ..."中文字国〇⺀", "\u{20000}", "\u{2A6D6}",
    ..."١٢४ⅫⅣ½²",
    "😀", "\u{1F3FD}", "\u200d", "\ufe0f", "\u{1F1EB}", "\u{1F1F7}",
    ..."€©∑≤",
    "\u0001", "\u007f", "\ue000",
];

function randomCases(count, seed) {
    const next = rng(seed);
    const cases = [];
    for (let i = 0; i < count; ++i) {
        const length = 1 + Math.floor(next() * 40);
        let text = "";
        for (let j = 0; j < length; ++j)
            text += alphabet[Math.floor(next() * alphabet.length)];
        cases.push({ name: `random_${i}`, text });
    }
    return cases;
}

// ---- BPE ids with recorded rank look-ups ------------------------------------------------------
function recordingEncoder(rankData) {
    const enc = new Tiktoken(rankData);
    const found = new Set();
    const map = enc.rankMap;
    const originalGet = map.get.bind(map);
    map.get = (key) => {
        const rank = originalGet(key);
        if (rank != null)
            found.add(key);
        return rank;
    };
    for (const [key, rank] of map.entries()) {
        if (!key.includes(","))
            found.add(key);  // every single byte
        void rank;
    }
    return { enc, found, originalGet };
}

function subsetFile({ found, originalGet }) {
    const lines = [];
    for (const key of found) {
        const bytes = Buffer.from(key.split(",").map(Number));
        lines.push([originalGet(key), `${bytes.toString("base64")} ${originalGet(key)}`]);
    }
    lines.sort((a, b) => a[0] - b[0]);
    return lines.map((l) => l[1]).join("\n") + "\n";
}

function exportFull(rankData, path) {
    const enc = new Tiktoken(rankData);
    const lines = [];
    for (const [key, rank] of enc.rankMap.entries())
        lines.push([rank, `${Buffer.from(key.split(",").map(Number)).toString("base64")} ${rank}`]);
    lines.sort((a, b) => a[0] - b[0]);
    writeFileSync(path, lines.map((l) => l[1]).join("\n") + "\n");
}

// One member per line and one case per line: small diffs when the corpus changes.
function writeJson(name, value) {
    const members = Object.entries(value).map(([key, v]) => {
        const body = Array.isArray(v)
            ? `[\n${v.map((item) => JSON.stringify(item)).join(",\n")}\n]`
            : JSON.stringify(v);
        return `${JSON.stringify(key)}: ${body}`;
    });
    writeFileSync(join(dataDir, name), `{\n${members.join(",\n")}\n}\n`);
}

// ---- Main --------------------------------------------------------------------------------------
const corpus = JSON.parse(readFileSync(join(dataDir, "corpus.json"), "utf8"));
const random = randomCases(240, 20261122);
const exportIndex = process.argv.indexOf("--export-ranks");

const encodings = ["cl100k_base", "o200k_base"];
const pieceSets = {};
for (const name of encodings) {
    const rankData = loadRanks(name);
    const recorder = recordingEncoder(rankData);
    const { enc } = recorder;
    const ordinary = [...corpus.cases, ...random.slice(0, 60)].map(({ name: n, text }) => ({
        name: n,
        text,
        ids: enc.encode(text, [], []),
    }));
    const special = corpus.specialCases.map(({ name: n, text }) => ({
        name: n,
        text,
        ids: enc.encode(text, "all"),
        idsAsText: enc.encode(text, [], []),
    }));
    for (const c of ordinary) {
        if (enc.decode(c.ids) !== c.text)
            throw new Error(`${name}: ${c.name} does not round-trip`);
    }
    writeJson(`expected_${name}.json`, {
        generator: "tests/tokenizer/generate_expected.mjs with js-tiktoken 1.0.21",
        encoding: name,
        pattern: rankData.pat_str,
        specialTokens: rankData.special_tokens,
        cases: ordinary,
        specialCases: special,
    });
    writeFileSync(join(dataDir, `${name}.subset.tiktoken`), subsetFile(recorder));
    pieceSets[name] = new RegExp(rankData.pat_str, "gu");
    if (exportIndex > 0) {
        mkdirSync(process.argv[exportIndex + 1], { recursive: true });
        exportFull(rankData, join(process.argv[exportIndex + 1], `${name}.tiktoken`));
    }
}

const kimiRegex = new RegExp(kimiPattern, "gv");
const shared = [...corpus.cases, ...corpus.specialCases, ...random];
const piecesOut = {
    generator: "tests/tokenizer/generate_expected.mjs, Node RegExp",
    kimiPatternAsJs: kimiPattern,
    kimi: [...shared, ...corpus.kimiOnly].map(({ name, text }) => ({
        name,
        text,
        pieces: pieces(kimiRegex, text),
    })),
};
for (const name of encodings)
    piecesOut[name] = shared.map(({ name: n, text }) => ({ name: n, text, pieces: pieces(pieceSets[name], text) }));
writeJson("expected_pieces.json", piecesOut);
console.log("wrote expected files to", dataDir);
