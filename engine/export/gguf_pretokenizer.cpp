// SPDX-License-Identifier: MIT
// Recognising the pre-tokenizer of a byte-level BPE tokenizer.json (export/gguf_pretokenizer.h).
#include "export/gguf_pretokenizer.h"

#include "moewb/calib/calibrate.h"

#include <utility>
#include <vector>

using json = nlohmann::json;

namespace moewb::gguf_export {

namespace {

/// SHA-256 of the probe's ids → llama.cpp's pre-tokenizer name, for the vocabularies llama.cpp's converter knows
/// (the subset that are byte-level BPE language models).
const std::vector<std::pair<const char*, const char*>>& knownHashes()
{
    static const std::vector<std::pair<const char*, const char*>> t = {
        {"0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5", "llama-bpe"},
        {"049ecf7629871e3041641907f3de7c733e4dbfdc736f57d882ba0b0845599754", "deepseek-llm"},
        {"347715f544604f9118bb75ed199f68779f423cabb20db6de6f31b908d04d7821", "deepseek-coder"},
        {"877081d19cf6996e2c4ff0e1236341e9b7bde288f5311a56a937f0afbbb3aeb5", "deepseek-v3"},
        {"b3f499bb4255f8ca19fccd664443283318f2fd2414d5e0b040fbdd0cc195d6c5", "deepseek-r1-qwen"},
        {"e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea", "qwen2"},
        {"3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454", "gpt-2"},
        {"b6dc8df998e1cfbdc4eac8243701a65afe638679230920b50d6f17d81c098166", "olmo"}, // = mpt's vocabulary
        {"a8594e3edff7c29c003940395316294b2c623e09894deebbc65f33f1515df79e", "dbrx"},
        {"c136ed14d01c2745d4f60a9596ae66800e2b61fa45643e72436041855ad4089d", "smaug-bpe"},
        {"9d032fcbd5501f4a38150912590928bfb36091efb5df11b8e2124b0390e3fb1e", "falcon3"},
        {"63b97e4253352e6f357cc59ea5b583e3a680eaeaf2632188c2b952de2588485e", "tekken"},
        {"855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249", "smollm"},
        {"35d91631860c815f952d711435f48d356ebac988362536bed955d43bfa436e34", "starcoder"},
        {"32d85c31273f8019248f2559fed492d929ea28b17e51d81d3bb36fff23ca72b3", "stablelm2"},
        {"fcace8b9cac38ce847670c970cd5892031a753a1ef381abd1d9af00f713da085", "phi-2"},
        {"9c2227e4dd922002fb81bde4fc02b0483ca4f12911410dee2255e4987644e3f8", "command-r"},
    };
    return t;
}

/// A known pre-tokenizer: its Split regexes (in order, before a ByteLevel without its own regex; real CR / LF / TAB
/// written as \r \n \t, see normalized()), whether the BPE model ignores merges for whole words, and the names
/// llama.cpp treats alike (same regexes and flags), the first being the one written unless the probe hash names
/// another of them.
struct KnownSplits {
    std::vector<std::string> regexes;
    bool ignoreMerges;
    std::vector<const char*> names;
};

const std::string kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

const std::vector<KnownSplits>& knownSplits()
{
    static const std::vector<KnownSplits> t = {
        {{kLlama3Regex}, true, {"llama-bpe", "falcon3"}},
        {{kLlama3Regex}, false, {"smaug-bpe", "dbrx"}},
        {{R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
         false,
         {"qwen2", "deepseek-r1-qwen", "stablelm2"}},
        {{R"(\p{N}{1,3})", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
          R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
         false,
         {"deepseek-v3"}},
    };
    return t;
}

/// GPT-2's ByteLevel regex: llama.cpp's gpt-2, olmo, mpt and phi-2 split with it.
const std::vector<const char*> kGpt2Names = {"gpt-2", "olmo", "mpt", "phi-2"};

std::string normalized(const std::string& re)
{
    std::string out;
    for (char c : re)
        out += c == '\r' ? std::string("\\r") : c == '\n' ? std::string("\\n") : c == '\t' ? std::string("\\t")
                                                                                       : std::string(1, c);
    return out;
}

std::string typeOf(const json& x)
{
    return x.is_object() ? x.value("type", std::string()) : std::string();
}

/// A plain ByteLevel pre-tokenizer with its own (GPT-2) regex.
bool isGpt2ByteLevel(const json& pt)
{
    return typeOf(pt) == "ByteLevel" && pt.value("use_regex", true);
}

/// Split(regex, Isolated) … then ByteLevel(use_regex false): the regexes, or nullopt for another structure.
std::optional<std::vector<std::string>> splitRegexes(const json& pt)
{
    if (typeOf(pt) != "Sequence" || !pt.contains("pretokenizers") || pt["pretokenizers"].empty())
        return std::nullopt;
    const json& seq = pt["pretokenizers"];
    const json& last = seq.back();
    if (typeOf(last) != "ByteLevel" || last.value("use_regex", true))
        return std::nullopt;
    std::vector<std::string> out;
    for (size_t i = 0; i + 1 < seq.size(); ++i) {
        const json& s = seq[i];
        const json& pat = s.value("pattern", json());
        if (typeOf(s) != "Split" || s.value("behavior", std::string()) != "Isolated" || s.value("invert", false)
            || !pat.is_object() || !pat.contains("Regex") || !pat["Regex"].is_string())
            return std::nullopt;
        out.push_back(normalized(pat["Regex"].get<std::string>()));
    }
    return out;
}

} // namespace

const std::string& preTokenizerProbe()
{
    static const std::string probe =
        "\x0a \x0a\x0a \x0a\x0a\x0a \x09 \x09\x09 \x09\x0a  \x0a   \x0a    \x0a     \x0a\xf0\x9f\x9a\x80 "
        "(normal) \xf0\x9f\x98\xb6\xe2\x80\x8d\xf0\x9f\x8c\xab\xef\xb8\x8f (multiple emojis concatenated)"
        " \xe2\x9c\x85 \xf0\x9f\xa6\x99\xf0\x9f\xa6\x99 3 33 333 3333 33333 333333 3333333 33333333 3.3 3"
        "..3 3...3 \xe1\x9e\x80\xe1\x9e\xb6\xe1\x9e\x93\xe1\x9f\x8b\xe1\x9e\x8f\xe1\x9f\x82\xe1\x9e\x96\xe1"
        "\x9e\xb7\xe1\x9e\x9f\xe1\x9f\x81\xe1\x9e\x9f\xe1\x9e\xa2\xe1\x9e\xb6\xe1\x9e\x85\xf0\x9f\x98\x81"
        " \x3f\xe6\x88\x91\xe6\x83\xb3\xe5\x9c\xa8""apple\xe5\xb7\xa5\xe4\xbd\x9c""1314151\xe5\xa4\xa9\xef"
        "\xbd\x9e ------======= \xd0\xbd\xd0\xb5\xd1\x89\xd0\xbe \xd0\xbd\xd0\xb0 \xd0\x91\xd1\x8a\xd0\xbb"
        "\xd0\xb3\xd0\xb0\xd1\x80\xd1\x81\xd0\xba\xd0\xb8 ''''''```````\x22\x22\x22\x22......!!!!!!\x3f\x3f"
        "\x3f\x3f\x3f\x3f I've been 'told he's there, 'RE you sure\x3f 'M not sure I'll make it, 'D you l"
        "ike some tea\x3f We'Ve a'lL";
    return probe;
}

std::string probeHash(const Tokenizer& tok)
{
    std::string text = "[";
    for (int32_t id : tok.encode(preTokenizerProbe(), true))
        text += (text.size() > 1 ? ", " : "") + std::to_string(id);
    return sha256Hex(text + "]");
}

namespace {

/// The names llama.cpp treats like this pre-tokenizer (first = the one to write), empty when not known.
std::vector<const char*> namesByRegex(const json& j)
{
    const json& pt = j.value("pre_tokenizer", json());
    if (isGpt2ByteLevel(pt))
        return kGpt2Names;
    const auto regexes = splitRegexes(pt);
    if (!regexes)
        return {};
    const bool ignoreMerges = j["model"].value("ignore_merges", false);
    for (const KnownSplits& k : knownSplits()) {
        std::vector<std::string> norm;
        for (const std::string& r : k.regexes)
            norm.push_back(normalized(r));
        if (norm == *regexes && k.ignoreMerges == ignoreMerges)
            return k.names;
    }
    return {};
}

std::string hashName(const std::string& hash)
{
    for (const auto& [h, name] : knownHashes())
        if (hash == h)
            return name;
    return "";
}

} // namespace

std::optional<std::string> preTokenizerByRegex(const json& j)
{
    const auto names = namesByRegex(j);
    return names.empty() ? std::nullopt : std::optional<std::string>(names.front());
}

PreTokenizerName preTokenizerName(const json& j, const Tokenizer& tok)
{
    const std::string hash = probeHash(tok), byHash = hashName(hash);
    const auto names = namesByRegex(j);
    for (const char* n : names)
        if (byHash == n)
            return PreTokenizerName{byHash, "regex and probe hash", hash};
    if (!names.empty())
        return PreTokenizerName{names.front(), "regex", hash};
    if (!byHash.empty())
        return PreTokenizerName{byHash, "probe hash", hash};
    return PreTokenizerName{"default", "", hash};
}

} // namespace moewb::gguf_export
