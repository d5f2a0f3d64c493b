// SPDX-License-Identifier: MIT
// Calibration input: files → token stream with domains, windows, SHA-256 of the inputs.
#include "moewb/calib/calibrate.h"

#include "moewb/core/error.h"

#include <nlohmann/json.hpp>

#include <array>
#include <cerrno>
#include <climits>
#include <limits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

namespace moewb {

// ----------------------------------------------------------------------------------- SHA-256
// FIPS 180-4, written out here because the engine has no crypto dependency; the provenance hash
// only needs to identify the calibration files.
namespace {
class Sha256 {
public:
    void update(const uint8_t* p, size_t n)
    {
        m_bits += uint64_t(n) * 8;
        while (n > 0) {
            const size_t take = std::min(n, size_t(64) - m_fill);
            std::memcpy(m_buf.data() + m_fill, p, take);
            m_fill += take;
            p += take;
            n -= take;
            if (m_fill == 64) {
                block(m_buf.data());
                m_fill = 0;
            }
        }
    }
    std::string hex()
    {
        const uint64_t bits = m_bits;
        const uint8_t pad = 0x80;
        update(&pad, 1);
        const uint8_t zero = 0;
        while (m_fill != 56)
            update(&zero, 1);
        uint8_t len[8];
        for (int i = 0; i < 8; ++i)
            len[i] = uint8_t(bits >> (56 - 8 * i));
        update(len, 8);
        static const char* digits = "0123456789abcdef";
        std::string out;
        for (uint32_t v : m_h)
            for (int s = 28; s >= 0; s -= 4)
                out += digits[(v >> s) & 0xf];
        return out;
    }

private:
    static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
    void block(const uint8_t* p)
    {
        static const uint32_t k[64] = {
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
            0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
            0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
            0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
            0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
            0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
            0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
            0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
        uint32_t w[64];
        for (int i = 0; i < 16; ++i)
            w[i] = uint32_t(p[4 * i]) << 24 | uint32_t(p[4 * i + 1]) << 16 | uint32_t(p[4 * i + 2]) << 8 | p[4 * i + 3];
        for (int i = 16; i < 64; ++i) {
            const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = m_h[0], b = m_h[1], c = m_h[2], d = m_h[3], e = m_h[4], f = m_h[5], g = m_h[6], h = m_h[7];
        for (int i = 0; i < 64; ++i) {
            const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
            const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        m_h[0] += a, m_h[1] += b, m_h[2] += c, m_h[3] += d, m_h[4] += e, m_h[5] += f, m_h[6] += g, m_h[7] += h;
    }
    std::array<uint32_t, 8> m_h{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    std::array<uint8_t, 64> m_buf{};
    size_t m_fill = 0;
    uint64_t m_bits = 0;
};

std::string readFile(const std::string& path)
{
    std::ifstream f(path, std::ios::binary);
    if (!f)
        throw InputError(path, std::string("cannot open calibration data (") + std::strerror(errno) + ")");
    std::ostringstream ss;
    ss << f.rdbuf();
    if (f.bad())
        throw IoError(path, "read failed");
    return ss.str();
}

bool endsWith(const std::string& s, const std::string& suffix)
{
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<int32_t> idsFromJson(const nlohmann::json& a, const std::string& where)
{
    std::vector<int32_t> out;
    out.reserve(a.size());
    for (const auto& v : a) {
        MOEWB_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= INT32_MAX, where,
                    "token ids must be non-negative integers, got ", v.dump());
        out.push_back(int32_t(v.get<int64_t>()));
    }
    return out;
}
} // namespace

std::string sha256Hex(const std::string& bytes)
{
    Sha256 h;
    h.update(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    return h.hex();
}

std::string sha256File(const std::string& path, int64_t* bytes)
{
    const std::string data = readFile(path);
    if (bytes)
        *bytes = int64_t(data.size());
    return sha256Hex(data);
}

// -------------------------------------------------------------------------------- data loading

CalibTokens loadCalibData(const std::vector<CalibDataSpec>& inputs, const TokenizeFn& tokenize)
{
    MOEWB_CHECK(!inputs.empty(), "calibration", "no calibration data given");
    CalibTokens out;
    std::vector<std::string> labels; // per token, resolved to indices at the end
    std::vector<int32_t> labelOf;    // per token index into `labels`
    std::map<std::string, int32_t> labelIndex;
    auto append = [&](const std::vector<int32_t>& ids, const std::string& label) {
        auto [it, fresh] = labelIndex.emplace(label, int32_t(labels.size()));
        if (fresh)
            labels.push_back(label);
        out.ids.insert(out.ids.end(), ids.begin(), ids.end());
        labelOf.insert(labelOf.end(), ids.size(), it->second);
    };
    auto encode = [&](const std::string& text, const std::string& where) {
        MOEWB_CHECK(bool(tokenize), where, "text input needs the model's tokenizer (or give pre-tokenized ids)");
        return tokenize(text);
    };

    for (const CalibDataSpec& in : inputs) {
        const std::string data = readFile(in.path);
        CalibDataFile f;
        f.path = in.path;
        f.domain = in.domain;
        f.bytes = int64_t(data.size());
        f.hashAlgo = "sha256";
        f.hash = sha256Hex(data);
        const size_t firstChar = data.find_first_not_of(" \t\r\n");
        if (endsWith(in.path, ".jsonl")) {
            f.format = "jsonl";
            std::istringstream lines(data);
            std::string line;
            for (int64_t n = 1; std::getline(lines, line); ++n) {
                if (line.find_first_not_of(" \t\r") == std::string::npos)
                    continue;
                const std::string where = in.path + ":" + std::to_string(n);
                nlohmann::json j;
                try {
                    j = nlohmann::json::parse(line);
                } catch (const nlohmann::json::exception& e) {
                    throw InputError(where, std::string("invalid JSON: ") + e.what());
                }
                if (j.is_array()) {
                    append(idsFromJson(j, where), in.domain);
                    continue;
                }
                MOEWB_CHECK(j.is_object() && j.contains("text") && j["text"].is_string(), where,
                            "expected an object with a \"text\" string (or an array of token ids)");
                std::string label = in.domain;
                if (label.empty() && j.contains("domain")) {
                    MOEWB_CHECK(j["domain"].is_string(), where, "\"domain\" must be a string");
                    label = j["domain"].get<std::string>();
                }
                append(encode(j["text"].get<std::string>(), where), label);
            }
        } else if (firstChar != std::string::npos && data[firstChar] == '[') {
            f.format = "ids";
            nlohmann::json j;
            try {
                j = nlohmann::json::parse(data);
            } catch (const nlohmann::json::exception& e) {
                throw InputError(in.path, std::string("invalid JSON: ") + e.what());
            }
            if (!j.empty() && j[0].is_array()) {
                for (size_t i = 0; i < j.size(); ++i) {
                    MOEWB_CHECK(j[i].is_array(), in.path, "element ", i, " is not an array of token ids");
                    append(idsFromJson(j[i], in.path), in.domain);
                }
            } else {
                append(idsFromJson(j, in.path), in.domain);
            }
        } else {
            f.format = "text";
            if (firstChar != std::string::npos)
                append(encode(data, in.path), in.domain);
        }
        out.files.push_back(f);
    }
    MOEWB_CHECK(!out.ids.empty(), inputs.front().path, "the calibration data holds no tokens");

    bool anyLabel = false;
    for (const auto& l : labels)
        anyLabel = anyLabel || !l.empty();
    if (anyLabel) {
        // Domain order: first appearance in the token stream.
        std::vector<int32_t> remap(labels.size(), -1);
        out.domain.resize(out.ids.size());
        for (size_t t = 0; t < out.ids.size(); ++t) {
            int32_t& d = remap[size_t(labelOf[t])];
            if (d < 0) {
                d = int32_t(out.domains.size());
                const std::string& l = labels[size_t(labelOf[t])];
                out.domains.push_back(l.empty() ? "(unlabeled)" : l);
            }
            out.domain[t] = d;
        }
    } else {
        out.domain.assign(out.ids.size(), -1);
    }
    return out;
}

// ------------------------------------------------------------------------------------- windows

std::vector<CalibWindow> calibWindows(int64_t n, int64_t samples, int64_t seqLen, bool randomWindows, int64_t seed)
{
    MOEWB_CHECK(samples > 0, "calibration", "the number of samples must be positive, got ", samples);
    MOEWB_CHECK(seqLen > 0, "calibration", "the sequence length must be positive, got ", seqLen);
    MOEWB_CHECK(n > 0, "calibration", "the calibration data holds no tokens");
    std::vector<CalibWindow> out;
    if (!randomWindows) {
        for (int64_t k = 0; k < samples && k * seqLen < n; ++k)
            out.push_back({k * seqLen, std::min((k + 1) * seqLen, n)});
        return out;
    }
    MOEWB_CHECK(n > seqLen, "calibration", "the data has ", n, " tokens; random windows of ", seqLen,
                " tokens need at least ", seqLen + 1);
    // Start ~ U[0, n − L − 1] as in the GPTQ scripts (python random.randint(0, n - L - 1)).
    std::mt19937_64 gen{static_cast<uint64_t>(seed)};
    const uint64_t range = uint64_t(n - seqLen);
    const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % range;
    for (int64_t k = 0; k < samples; ++k) {
        uint64_t u;
        do
            u = gen();
        while (u >= limit);
        const int64_t b = int64_t(u % range);
        out.push_back({b, b + seqLen});
    }
    return out;
}

std::string calibDataDescription(const std::vector<CalibDataFile>& files, int64_t windows, int64_t seqLen,
                                 bool randomWindows, int64_t seed)
{
    std::string names;
    for (const CalibDataFile& f : files)
        names += (names.empty() ? "" : ", ") + std::filesystem::path(f.path).filename().string();
    return (randomWindows ? std::to_string(windows) + " random windows (seed " + std::to_string(seed) + ") of "
                          : "first " + std::to_string(windows) + " windows of ")
        + std::to_string(seqLen) + " tokens of " + names;
}

} // namespace moewb
