// SPDX-License-Identifier: GPL-3.0-or-later
#include "pre_tokenizer.h"

#include <array>

#include "unicode_props.h"
#include "utf8.h"

namespace folio::tokenizer {

namespace {

// The patterns, verbatim. Kimi's is tokenization_kimi.py's pat_str; the others are tiktoken's
// (openai_public.py) and js-tiktoken's spellings of the same patterns.
constexpr std::string_view kKimiPattern =
    R"([\p{Han}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kO200kPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kO200kJsPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+('s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*('s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kCl100kPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kCl100kJsPattern =
    R"(('s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kCl100kPossessivePattern =
    R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s)";

struct Known {
    std::string_view text;
    PatternKind kind;
};
constexpr std::array<Known, 6> kKnownPatterns{{
    {kKimiPattern, PatternKind::Kimi},
    {kO200kPattern, PatternKind::O200k},
    {kO200kJsPattern, PatternKind::O200k},
    {kCl100kPattern, PatternKind::Cl100k},
    {kCl100kJsPattern, PatternKind::Cl100k},
    {kCl100kPossessivePattern, PatternKind::Cl100kPossessive},
}};

// How each pattern's alternatives are arranged (see Scanner::matchAt).
struct Config {
    bool hanRuns = false;       // [\p{Han}]+ first, and Han removed from the letter classes
    bool caseSplit = false;     // o200k-style upper/lower alternatives; else cl100k's \p{L}+
    bool wsToEndFirst = false;  // \s++$ before \s*[\r\n]
};

Config configFor(PatternKind kind) {
    switch (kind) {
        case PatternKind::Kimi:
            return {true, true, false};
        case PatternKind::O200k:
            return {false, true, false};
        case PatternKind::Cl100k:
            return {false, false, false};
        case PatternKind::Cl100kPossessive:
            return {false, false, true};
    }
    return {};
}

constexpr size_t kFail = 0;  // no alternative can match an empty string, so 0 is never an end

// One pass over decoded text. Each method emulates one alternative of the regex at one start
// position and returns the end of its match (exclusive), or kFail. The greedy-with-backtracking
// semantics are worked out per alternative in the comments.
class Scanner {
  public:
    Scanner(Config config, const char32_t* cps, const CharFlags* flags, size_t n)
        : c_(config), cp_(cps), fl_(flags), n_(n) {}

    size_t matchAt(size_t i) const {
        const CharFlags f = fl_[i];
        // [\p{Han}]+
        if (c_.hanRuns && (f & kHan)) {
            size_t e = i + 1;
            while (e < n_ && (fl_[e] & kHan))
                ++e;
            return e;
        }
        if (c_.caseSplit) {
            // P?A*B+C? then P?A+B*C?, each first with the optional P taken.
            const bool p = isP(f);
            if (p) {
                if (size_t e = upperStarLowerPlus(i + 1))
                    return e;
            }
            if (size_t e = upperStarLowerPlus(i))
                return e;
            if (p) {
                if (size_t e = upperPlusLowerStar(i + 1))
                    return e;
            }
            if (size_t e = upperPlusLowerStar(i))
                return e;
        } else {
            // (?i:'s|'t|'re|'ve|'m|'ll|'d) then [^\r\n\p{L}\p{N}]?\p{L}+
            if (size_t c = contraction(i))
                return i + c;
            size_t s = n_;
            if (isP(f) && i + 1 < n_ && (fl_[i + 1] & kLetter))
                s = i + 1;
            else if (f & kLetter)
                s = i;
            if (s < n_) {
                size_t e = s + 1;
                while (e < n_ && (fl_[e] & kLetter))
                    ++e;
                return e;
            }
        }
        // \p{N}{1,3}
        if (f & kNumber) {
            size_t e = i + 1;
            while (e < n_ && e - i < 3 && (fl_[e] & kNumber))
                ++e;
            return e;
        }
        // " ?[^\s\p{L}\p{N}]+[\r\n]*" (o200k's [\r\n/]* is the same: Q+ already takes every '/')
        {
            size_t s = n_;
            if (cp_[i] == ' ' && i + 1 < n_ && isQ(fl_[i + 1]))
                s = i + 1;
            else if (isQ(f))
                s = i;
            if (s < n_) {
                size_t e = s + 1;
                while (e < n_ && isQ(fl_[e]))
                    ++e;
                while (e < n_ && (fl_[e] & kNewline))
                    ++e;
                return e;
            }
        }
        if (f & kWhiteSpace) {
            size_t w = i + 1;  // end of the whitespace run
            while (w < n_ && (fl_[w] & kWhiteSpace))
                ++w;
            // \s++$ (possessive cl100k only)
            if (c_.wsToEndFirst && w == n_)
                return w;
            // \s*[\r\n]+ : \s* backs off to the run's last newline, which [\r\n]+ then takes.
            for (size_t k = w; k > i; --k) {
                if (fl_[k - 1] & kNewline)
                    return k;
            }
            // \s+(?!\S) : the whole run at the end of text, else all but its last character.
            if (w == n_)
                return w;
            if (w - i >= 2)
                return w - 1;
            // \s+
            return w;
        }
        // Unreachable: every code point is a letter, mark, number, whitespace or "other", and
        // each of those starts some alternative above. Kept so the scanner always advances.
        return i + 1;
    }

  private:
    static bool isP(CharFlags f) { return !(f & (kNewline | kLetter | kNumber)); }
    static bool isQ(CharFlags f) { return !(f & (kWhiteSpace | kLetter | kNumber)); }
    bool isA(size_t j) const { return (fl_[j] & kUpperish) && !(c_.hanRuns && (fl_[j] & kHan)); }
    bool isB(size_t j) const { return (fl_[j] & kLowerish) && !(c_.hanRuns && (fl_[j] & kHan)); }

    // (?i:'s|'t|'re|'ve|'m|'ll|'d) at j: its length, or 0. Case-insensitive as Rust's regex
    // folds case: 's' also matches U+017F (LATIN SMALL LETTER LONG S).
    size_t contraction(size_t j) const {
        if (j + 1 >= n_ || cp_[j] != '\'')
            return 0;
        const char32_t a = cp_[j + 1];
        switch (a) {
            case 's':
            case 'S':
            case 0x017F:
            case 't':
            case 'T':
            case 'm':
            case 'M':
            case 'd':
            case 'D':
                return 2;
            default:
                break;
        }
        if (j + 2 >= n_)
            return 0;
        const char32_t b = cp_[j + 2];
        const bool bE = b == 'e' || b == 'E';
        if (((a == 'r' || a == 'R') && bE) || ((a == 'v' || a == 'V') && bE) ||
            ((a == 'l' || a == 'L') && (b == 'l' || b == 'L')))
            return 3;
        return 0;
    }

    // A*B+C? from s. A* takes the whole run of A; B+ needs one B, so A* gives back characters
    // until the next one is a B (A and B share Lm, Lo and M); B+ then takes the run of B.
    size_t upperStarLowerPlus(size_t s) const {
        if (s >= n_)
            return kFail;
        size_t a = s;
        while (a < n_ && isA(a))
            ++a;
        for (size_t k = a;; --k) {
            if (k < n_ && isB(k)) {
                size_t e = k + 1;
                while (e < n_ && isB(e))
                    ++e;
                return e + contraction(e);
            }
            if (k == s)
                return kFail;
        }
    }

    // A+B*C? from s: greedy throughout, nothing after can fail.
    size_t upperPlusLowerStar(size_t s) const {
        if (s >= n_ || !isA(s))
            return kFail;
        size_t e = s + 1;
        while (e < n_ && isA(e))
            ++e;
        while (e < n_ && isB(e))
            ++e;
        return e + contraction(e);
    }

    Config c_;
    const char32_t* cp_;
    const CharFlags* fl_;
    size_t n_;
};

struct Scratch {
    std::vector<char32_t> cps;
    std::vector<CharFlags> flags;
    std::vector<uint32_t> offsets;
};

// Decodes `text` into code points, their flags and their byte offsets (offsets has n+1 entries).
size_t decode(std::string_view text, Scratch& s) {
    const size_t cap = text.size() + 1;
    if (s.cps.size() < cap) {
        s.cps.resize(cap);
        s.flags.resize(cap);
        s.offsets.resize(cap);
    }
    const CharFlags* table = bmpCharFlags();
    size_t n = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        const auto b = static_cast<uint8_t>(text[pos]);
        s.offsets[n] = static_cast<uint32_t>(pos);
        if (b < 0x80) {
            s.cps[n] = b;
            s.flags[n] = table[b];
            ++pos;
        } else {
            const DecodedChar c = decodeUtf8(text, pos);
            s.cps[n] = c.cp;
            s.flags[n] = c.cp < 0x10000 ? table[c.cp] : charFlags(c.cp);
            pos += c.length;
        }
        ++n;
    }
    s.offsets[n] = static_cast<uint32_t>(text.size());
    return n;
}

}  // namespace

PreTokenizer::PreTokenizer(PatternKind kind) : kind_(kind) {}

Result<PreTokenizer> PreTokenizer::fromPattern(std::string_view pattern) {
    for (const Known& k : kKnownPatterns) {
        if (k.text == pattern)
            return PreTokenizer(k.kind);
    }
    return makeError(ErrorCode::Unsupported,
                     "unsupported pre-tokenizer pattern; supported are Kimi's, o200k_base's and "
                     "cl100k_base's (as tiktoken or js-tiktoken spell them)");
}

Result<PreTokenizer> PreTokenizer::fromName(std::string_view name) {
    if (name == "kimi")
        return PreTokenizer(PatternKind::Kimi);
    if (name == "o200k_base")
        return PreTokenizer(PatternKind::O200k);
    if (name == "cl100k_base")
        return PreTokenizer(PatternKind::Cl100k);
    return makeError(ErrorCode::InvalidArgument, "unknown pattern \"", name,
                     "\" (expected kimi, o200k_base or cl100k_base)");
}

std::string_view PreTokenizer::patternText(PatternKind kind) {
    switch (kind) {
        case PatternKind::Kimi:
            return kKimiPattern;
        case PatternKind::O200k:
            return kO200kPattern;
        case PatternKind::Cl100k:
            return kCl100kPattern;
        case PatternKind::Cl100kPossessive:
            return kCl100kPossessivePattern;
    }
    return {};
}

std::string_view PreTokenizer::name() const {
    switch (kind_) {
        case PatternKind::Kimi:
            return "kimi";
        case PatternKind::O200k:
            return "o200k_base";
        case PatternKind::Cl100k:
            return "cl100k_base";
        case PatternKind::Cl100kPossessive:
            return "cl100k_base (possessive form)";
    }
    return {};
}

void PreTokenizer::split(std::string_view text, std::vector<uint32_t>& ends) const {
    thread_local Scratch scratch;
    const size_t n = decode(text, scratch);
    const Scanner scanner(configFor(kind_), scratch.cps.data(), scratch.flags.data(), n);
    for (size_t i = 0; i < n;) {
        const size_t e = scanner.matchAt(i);
        ends.push_back(scratch.offsets[e]);
        i = e;
    }
}

std::vector<std::string_view> PreTokenizer::pieces(std::string_view text) const {
    std::vector<uint32_t> ends;
    split(text, ends);
    std::vector<std::string_view> out;
    out.reserve(ends.size());
    uint32_t start = 0;
    for (uint32_t end : ends) {
        out.push_back(text.substr(start, end - start));
        start = end;
    }
    return out;
}

size_t PreTokenizer::safeCut(std::string_view text, size_t from) {
    if (from >= text.size())
        return std::string_view::npos;
    // Start at the character that contains or precedes `from`.
    size_t pos = from;
    while (pos > 0 && (static_cast<uint8_t>(text[pos]) & 0xC0) == 0x80)
        --pos;
    size_t prevStart = pos;
    if (pos > 0) {
        prevStart = pos - 1;
        while (prevStart > 0 && (static_cast<uint8_t>(text[prevStart]) & 0xC0) == 0x80)
            --prevStart;
    }
    CharFlags prev = 0;
    if (prevStart < pos)
        prev = charFlags(decodeUtf8(text, prevStart).cp);
    while (pos < text.size()) {
        const DecodedChar c = decodeUtf8(text, pos);
        const CharFlags f = charFlags(c.cp);
        // A piece that holds a letter continues only with letters, marks, Han characters or an
        // apostrophe (contractions); one that holds \r or \n never continues with a letter.
        if (pos >= from && pos > 0 &&
            (((prev & kLetter) && (f & kPySpace)) || ((prev & kNewline) && (f & kLetter))))
            return pos;
        prev = f;
        pos += c.length;
    }
    return std::string_view::npos;
}

}  // namespace folio::tokenizer
