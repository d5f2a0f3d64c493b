// SPDX-License-Identifier: MIT
// safetensors reader (mmap + the reference's full validation), sharded checkpoints and the
// streaming atomic writer. Format rules: docs/formats.md §1. No torch and no Qt in this file.
#include "moewb/core/json_limits.h"
#include "moewb/safetensors/safetensors.h"

#include "moewb/core/error.h"
#include "moewb/core/text_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <set>
#include <sstream>
#include <tuple>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace moewb {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// The reference's MAX_HEADER_SIZE; a larger N is refused before anything is parsed so that a
// corrupt length can never make us scan (or allocate for) gigabytes of "header".
constexpr uint64_t kMaxHeaderSize = 100000000;

struct DTypeRow {
    DType dtype;
    const char* name;
    int bytes;
};

constexpr DTypeRow kDTypes[] = {
    {DType::BOOL, "BOOL", 1}, {DType::U8, "U8", 1},     {DType::I8, "I8", 1},
    {DType::I16, "I16", 2},   {DType::U16, "U16", 2},   {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I32, "I32", 4},   {DType::U32, "U32", 4},
    {DType::F32, "F32", 4},   {DType::F64, "F64", 8},   {DType::I64, "I64", 8},
    {DType::U64, "U64", 8},
};

// Valid safetensors dtypes that moewb cannot represent: a file using them is well-formed, so the
// message must say "unsupported", not "unknown", or users will think the file is corrupt.
constexpr const char* kUnsupportedDTypes[] = {"F4",      "F6_E2M3",     "F6_E3M2",     "F8_E5M2", "F8_E4M3",
                                              "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "C64"};

const DTypeRow& row(DType d)
{
    for (const auto& r : kDTypes)
        if (r.dtype == d)
            return r;
    MOEWB_ASSERT(false && "DType missing from kDTypes");
    return kDTypes[0];
}

/// Empty on success, else the problem ("unknown dtype 'X'").
std::string lookupDType(const std::string& s, DType* out)
{
    for (const auto& r : kDTypes) {
        if (s == r.name) {
            *out = r.dtype;
            return {};
        }
    }
    std::string supported;
    for (const auto& r : kDTypes)
        supported += std::string(supported.empty() ? "" : ", ") + r.name;
    for (const char* u : kUnsupportedDTypes)
        if (s == u)
            return "unsupported dtype '" + s + "' (moewb handles " + supported + ")";
    return "unknown dtype '" + s + "'";
}

std::string shapeString(const std::vector<int64_t>& shape)
{
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i)
        s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

std::string quoted(const std::string& name)
{
    return "tensor '" + name + "'";
}

/// Product of dims then × element size, refusing overflow exactly where the reference does
/// (left-to-right checked multiplication, so [2^40, 2^40, 0] overflows but [0, 2^40, 2^40] does not).
bool byteSize(const std::vector<int64_t>& shape, int elemBytes, uint64_t* out)
{
    uint64_t n = 1;
    for (int64_t d : shape) {
        const auto ud = static_cast<uint64_t>(d);
        if (ud != 0 && n > std::numeric_limits<uint64_t>::max() / ud)
            return false;
        n *= ud;
    }
    if (n > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(elemBytes))
        return false;
    *out = n * static_cast<uint64_t>(elemBytes);
    return true;
}

/// Strict UTF-8 (what Rust's str::from_utf8 accepts): no overlongs, no surrogates, <= U+10FFFF.
/// Returns the offset of the first bad byte, or npos.
size_t firstInvalidUtf8(const uint8_t* p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const uint8_t c = p[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        int len = 0;
        uint8_t lo = 0x80, hi = 0xBF; // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0)
                lo = 0xA0; // overlong
            if (c == 0xED)
                hi = 0x9F; // surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0)
                lo = 0x90; // overlong
            if (c == 0xF4)
                hi = 0x8F; // > U+10FFFF
        } else {
            return i;
        }
        if (i + len > n || p[i + 1] < lo || p[i + 1] > hi)
            return i;
        for (int k = 2; k < len; ++k)
            if (p[i + k] < 0x80 || p[i + k] > 0xBF)
                return i;
        i += len;
    }
    return std::string::npos;
}

std::string oneLine(std::string s)
{
    std::replace(s.begin(), s.end(), '\n', ' ');
    return s;
}

std::string osError(int err)
{
    return std::strerror(err);
}

/// Thrown from inside nlohmann's parser callback; caught right outside the parse.
struct DuplicateKey {
    std::string key;
    int depth;          ///< 1 = a key of the top-level object
    std::string parent; ///< the top-level key the duplicate sits under (depth > 1)
};

/// Parses JSON text, rejecting duplicate keys in any object. nlohmann silently keeps the last
/// value, but safetensors forbids duplicates and a duplicated tensor name would otherwise hide a
/// tensor whose bytes still occupy the buffer.
json parseNoDuplicates(const char* begin, const char* end)
{
    // nlohmann stops at a NUL byte as if the input ended there, so "{}\0junk" would parse. Raw NUL
    // is never valid JSON (not even inside strings), so refuse it the way serde_json does.
    if (const void* nul = std::memchr(begin, 0, static_cast<size_t>(end - begin)))
        throw json::parse_error::create(101, static_cast<size_t>(static_cast<const char*>(nul) - begin) + 1,
                                        "NUL byte in JSON text", nullptr);
    std::vector<std::set<std::string>> seen;
    std::string topKey; // so that a nested duplicate can name its tensor
    auto cb = [&seen, &topKey](int, json::parse_event_t ev, json& parsed) {
        switch (ev) {
        case json::parse_event_t::object_start:
            seen.emplace_back();
            break;
        case json::parse_event_t::object_end:
            seen.pop_back();
            break;
        case json::parse_event_t::key: {
            const auto& k = parsed.get_ref<const std::string&>();
            if (!seen.back().insert(k).second)
                throw DuplicateKey {k, static_cast<int>(seen.size()), topKey};
            if (seen.size() == 1)
                topKey = k;
            break;
        }
        default:
            break;
        }
        return true;
    };
    return json::parse(begin, end, cb);
}

/// A JSON number that fits a non-negative integer; floats and negatives are schema errors (the
/// reference deserializes into usize).
bool asUnsigned(const json& v, uint64_t* out)
{
    if (!v.is_number_unsigned())
        return false;
    *out = v.get<uint64_t>();
    return true;
}

std::string jsonTypeName(const json& v)
{
    if (v.is_number_integer() && !v.is_number_unsigned())
        return "negative number " + v.dump();
    if (v.is_number_float())
        return "non-integer number " + v.dump();
    return std::string(v.type_name()) + (v.is_string() ? " " + v.dump() : "");
}

/// Schema check for one header entry, filling `t` (offsets and shape not yet cross-checked).
void parseTensorEntry(const std::string& path, const std::string& name, const json& v, TensorInfo& t)
{
    const std::string where = quoted(name);
    MOEWB_CHECK(v.is_object(), path, where, ": header entry is a JSON ", v.type_name(),
                ", expected an object with dtype, shape and data_offsets");
    t.name = name;

    const auto dt = v.find("dtype");
    MOEWB_CHECK(dt != v.end(), path, where, ": missing field 'dtype'");
    MOEWB_CHECK(dt->is_string(), path, where, ": 'dtype' is a ", jsonTypeName(*dt), ", expected a string");
    const std::string problem = lookupDType(dt->get_ref<const std::string&>(), &t.dtype);
    MOEWB_CHECK(problem.empty(), path, where, ": ", problem);

    const auto sh = v.find("shape");
    MOEWB_CHECK(sh != v.end(), path, where, ": missing field 'shape'");
    MOEWB_CHECK(sh->is_array(), path, where, ": 'shape' is a ", jsonTypeName(*sh), ", expected an array");
    t.shape.clear();
    for (size_t i = 0; i < sh->size(); ++i) {
        const json& d = (*sh)[i];
        uint64_t u = 0;
        MOEWB_CHECK(asUnsigned(d, &u), path, where, ": shape[", i, "] is a ", jsonTypeName(d),
                    ", expected a non-negative integer");
        // A dim above INT64_MAX cannot describe real data (only combined with a 0 dim) and cannot be
        // held by at::IntArrayRef, so refuse it rather than wrap around.
        MOEWB_CHECK(u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), path, where, ": shape[", i,
                    "] = ", u, " is too large");
        t.shape.push_back(static_cast<int64_t>(u));
    }

    const auto off = v.find("data_offsets");
    MOEWB_CHECK(off != v.end(), path, where, ": missing field 'data_offsets'");
    MOEWB_CHECK(off->is_array() && off->size() == 2, path, where,
                ": 'data_offsets' must be an array of two integers [BEGIN, END], got ", oneLine(off->dump()));
    MOEWB_CHECK(asUnsigned((*off)[0], &t.begin) && asUnsigned((*off)[1], &t.end), path, where,
                ": 'data_offsets' must hold non-negative integers, got ", oneLine(off->dump()));
}

} // namespace

// ---------------------------------------------------------------------------------------------
// dtypes

const char* dtypeName(DType d)
{
    return row(d).name;
}

int dtypeBytes(DType d)
{
    return row(d).bytes;
}

DType dtypeFromName(const std::string& s)
{
    DType d = DType::F32;
    const std::string problem = lookupDType(s, &d);
    if (!problem.empty())
        throw InputError(problem);
    return d;
}

int64_t TensorInfo::numel() const
{
    // Shapes were checked on open: the product fits (it is at most the byte size, or 0).
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    return n;
}

// ---------------------------------------------------------------------------------------------
// SafetensorsFile

namespace {

/// The whole file mapped read-only; at least the 8-byte header length.
std::pair<const uint8_t*, uint64_t> mapFile(const std::string& path)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw IoError(path, "cannot open: " + osError(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        throw IoError(path, "cannot stat: " + osError(err));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw InputError(path, "not a regular file");
    }
    const auto size = static_cast<uint64_t>(st.st_size);
    if (size < 8) {
        ::close(fd);
        throw InputError(path, "file is " + std::to_string(size) +
                                   " bytes, too small to hold the 8-byte header length (not a safetensors file?)");
    }
    // MAP_PRIVATE + PROT_READ: we never write, and private keeps a concurrent writer's truncation of
    // a *different* inode (our writer renames) from affecting us.
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int mapErr = errno;
    ::close(fd); // the mapping keeps the file alive
    if (map == MAP_FAILED)
        throw IoError(path, "cannot mmap " + std::to_string(size) + " bytes: " + osError(mapErr));
    return {static_cast<const uint8_t*>(map), size};
}

/// The JSON header after the 8-byte length (UTF-8, depth-limited, no duplicate keys); its length in n.
json parseHeader(const std::string& path, const uint8_t* p, uint64_t size, uint64_t& n)
{
    n = 0;
    for (int i = 7; i >= 0; --i)
        n = (n << 8) | p[i];
    MOEWB_CHECK(n <= kMaxHeaderSize, path, "header length ", n,
                " exceeds the 100000000-byte limit (not a safetensors file?)");
    MOEWB_CHECK(8 + n <= size, path, "header length ", n, " runs past the end of the ", size, "-byte file");
    const char* hBegin = reinterpret_cast<const char*>(p + 8);
    const char* hEnd = hBegin + n;
    const size_t bad = firstInvalidUtf8(p + 8, n);
    MOEWB_CHECK(bad == std::string::npos, path, "header is not valid UTF-8 (bad byte at header offset ", bad, ")");

    checkJsonDepth(hBegin, n, path);
    json header;
    try {
        header = parseNoDuplicates(hBegin, hEnd);
    } catch (const DuplicateKey& dup) {
        if (dup.depth == 1)
            throw InputError(path, "duplicate tensor name '" + dup.key + "' in header");
        throw InputError(path, (dup.parent == "__metadata__" ? std::string("__metadata__") : quoted(dup.parent)) +
                                   ": duplicate JSON key '" + dup.key + "'");
    } catch (const json::exception& e) {
        throw InputError(path, "header is not valid JSON: " + oneLine(e.what()));
    }
    MOEWB_CHECK(header.is_object(), path, "header is a JSON ", header.type_name(), ", expected an object");
    return header;
}

/// The header's tensor entries and __metadata__ strings.
void readEntries(const std::string& path, const json& header, std::vector<TensorInfo>& tensors,
                 std::map<std::string, std::string>& metadata)
{
    tensors.reserve(header.size());
    for (const auto& [key, value] : header.items()) {
        if (key == "__metadata__") {
            // serde's Option<HashMap<String,String>>: null means absent.
            if (value.is_null())
                continue;
            MOEWB_CHECK(value.is_object(), path, "__metadata__ is a JSON ", value.type_name(),
                        ", expected an object of strings");
            for (const auto& [mk, mv] : value.items()) {
                MOEWB_CHECK(mv.is_string(), path, "__metadata__ value for key '", mk, "' is a ", jsonTypeName(mv),
                            ", expected a string");
                metadata[mk] = mv.get<std::string>();
            }
            continue;
        }
        TensorInfo t;
        parseTensorEntry(path, key, value, t);
        tensors.push_back(std::move(t));
    }
}

/// Note [safetensors offsets]: like the reference, sort by (BEGIN, END) and require the ranges to
/// tile [0, last END) exactly, each as long as its shape and dtype need. Any order in the header and
/// unaligned BEGINs are fine. Returns the last END.
uint64_t checkTiling(const std::string& path, const std::vector<TensorInfo>& tensors)
{
    std::vector<const TensorInfo*> byOffset;
    byOffset.reserve(tensors.size());
    for (const auto& t : tensors)
        byOffset.push_back(&t);
    std::sort(byOffset.begin(), byOffset.end(), [](const TensorInfo* a, const TensorInfo* b) {
        return std::tie(a->begin, a->end, a->name) < std::tie(b->begin, b->end, b->name);
    });
    uint64_t prevEnd = 0;
    const TensorInfo* prev = nullptr;
    for (const TensorInfo* t : byOffset) {
        const std::string where = quoted(t->name);
        const std::string offs = "data_offsets [" + std::to_string(t->begin) + ", " + std::to_string(t->end) + "]";
        MOEWB_CHECK(t->end >= t->begin, path, where, ": ", offs, " end before they begin");
        if (t->begin != prevEnd) {
            if (!prev)
                throw InputError(path, where + ": " + offs + " leave a gap: the first tensor must start at 0");
            throw InputError(path, where + ": " + offs + (t->begin > prevEnd ? " leave a gap after " : " overlap ") +
                                       quoted(prev->name) + ", which ends at " + std::to_string(prevEnd));
        }
        uint64_t need = 0;
        MOEWB_CHECK(byteSize(t->shape, dtypeBytes(t->dtype), &need), path, where, ": shape ", shapeString(t->shape),
                    " of ", dtypeName(t->dtype), " overflows 64-bit size arithmetic");
        MOEWB_CHECK(t->nbytes() == need, path, where, ": ", offs, " hold ", t->nbytes(), " bytes but shape ",
                    shapeString(t->shape), " of ", dtypeName(t->dtype), " needs ", need);
        prevEnd = t->end;
        prev = t;
    }
    return prevEnd;
}

/// The tensors end exactly where the file does.
void checkDataSize(const std::string& path, uint64_t tensorsEnd, uint64_t dataSize)
{
    if (tensorsEnd == dataSize)
        return;
    // tensorsEnd > dataSize: the file was cut short. tensorsEnd < dataSize: junk after the last tensor.
    if (tensorsEnd > dataSize)
        throw InputError(path, "file is truncated: tensors need " + std::to_string(tensorsEnd) +
                                   " data bytes but only " + std::to_string(dataSize) + " follow the header");
    throw InputError(path, std::to_string(dataSize - tensorsEnd) +
                               " trailing bytes after the last tensor (tensors end at data offset " +
                               std::to_string(tensorsEnd) + ", data is " + std::to_string(dataSize) + " bytes)");
}

} // namespace

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path)
{
    std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
    f->m_path = path;
    std::tie(f->m_map, f->m_size) = mapFile(path);
    // From here on the destructor unmaps if validation throws.
    uint64_t headerLength = 0;
    const json header = parseHeader(path, f->m_map, f->m_size, headerLength);
    f->m_dataStart = 8 + headerLength;
    readEntries(path, header, f->m_tensors, f->m_metadata);
    checkDataSize(path, checkTiling(path, f->m_tensors), f->m_size - f->m_dataStart);
    std::sort(f->m_tensors.begin(), f->m_tensors.end(),
              [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
    for (size_t i = 0; i < f->m_tensors.size(); ++i)
        f->m_index.emplace(f->m_tensors[i].name, i);
    return f;
}

SafetensorsFile::~SafetensorsFile()
{
    if (m_map)
        ::munmap(const_cast<uint8_t*>(m_map), m_size);
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const
{
    const auto it = m_index.find(name);
    return it == m_index.end() ? nullptr : &m_tensors[it->second];
}

const uint8_t* SafetensorsFile::data(const TensorInfo& t) const
{
    return m_map + m_dataStart + t.begin;
}

void SafetensorsFile::release(const TensorInfo& t) const
{
    // Drop the whole pages inside the tensor's range from this process's resident set: the
    // mapping is read-only and file-backed, so they are simply re-read if touched again. This is
    // what keeps layer streaming at one layer's weights instead of the whole file.
    const uint64_t page = uint64_t(::sysconf(_SC_PAGESIZE));
    const uint64_t from = (m_dataStart + t.begin + page - 1) / page * page;
    const uint64_t to = (m_dataStart + t.end) / page * page;
    if (to > from)
        ::madvise(const_cast<uint8_t*>(m_map) + from, to - from, MADV_DONTNEED);
}

// ---------------------------------------------------------------------------------------------
// Checkpoint

namespace {

std::string readWholeFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw IoError(path, "cannot open: " + osError(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad())
        throw IoError(path, "cannot read: " + osError(errno));
    return ss.str();
}

} // namespace

Checkpoint Checkpoint::open(const std::string& dir)
{
    Checkpoint c;
    c.m_dir = dir;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        if (fs::exists(dir, ec))
            throw InputError(dir, "not a directory");
        throwCannotAccess(dir, "no such directory");
    }

    const fs::path root(dir);
    const fs::path indexPath = root / "model.safetensors.index.json";
    std::map<std::string, std::string> weightMap; // tensor -> shard, from the index
    std::vector<std::string> shards;              // relative to dir

    if (fs::exists(indexPath, ec)) {
        const std::string ip = indexPath.string();
        const std::string text = readWholeFile(ip);
        checkJsonDepth(text, ip);
        json index;
        try {
            index = parseNoDuplicates(text.data(), text.data() + text.size());
        } catch (const DuplicateKey& dup) {
            throw InputError(ip, "duplicate JSON key '" + dup.key + "'" +
                                     (dup.depth > 1 ? " under '" + dup.parent + "'" : std::string()));
        } catch (const json::exception& e) {
            throw InputError(ip, "not valid JSON: " + oneLine(e.what()));
        }
        MOEWB_CHECK(index.is_object(), ip, "top level is a JSON ", index.type_name(), ", expected an object");
        const auto wm = index.find("weight_map");
        MOEWB_CHECK(wm != index.end(), ip, "missing 'weight_map'");
        MOEWB_CHECK(wm->is_object(), ip, "'weight_map' is a JSON ", wm->type_name(), ", expected an object");
        MOEWB_CHECK(!wm->empty(), ip, "'weight_map' is empty");
        std::set<std::string> distinct;
        for (const auto& [name, shard] : wm->items()) {
            MOEWB_CHECK(shard.is_string(), ip, "weight_map entry for ", quoted(name), " is a JSON ", shard.type_name(),
                        ", expected a shard file name");
            const std::string s = shard.get<std::string>();
            // Shards live in the model directory; an absolute path or ".." would read outside it.
            const fs::path sp(s);
            bool escapes = sp.is_absolute() || s.empty();
            for (const auto& part : sp)
                escapes = escapes || part == "..";
            MOEWB_CHECK(!escapes, ip, "weight_map entry for ", quoted(name), " names shard '", s,
                        "' outside the model directory");
            weightMap[name] = s;
            distinct.insert(s);
        }
        for (const auto& s : distinct) {
            MOEWB_CHECK(fs::is_regular_file(root / s, ec), ip, "shard '", s, "' (listed for ",
                        quoted(std::find_if(weightMap.begin(), weightMap.end(),
                                            [&s](const auto& kv) { return kv.second == s; })
                                   ->first),
                        ") does not exist in ", dir);
            shards.push_back(s);
        }
    } else if (fs::is_regular_file(root / "model.safetensors", ec)) {
        shards.push_back("model.safetensors");
    } else {
        for (const auto& e : fs::directory_iterator(root, ec)) {
            if (e.path().extension() == ".safetensors" && e.is_regular_file(ec))
                shards.push_back(e.path().filename().string());
        }
        // Byte order of names so that model-00001-of-00003 ... opens in shard order.
        std::sort(shards.begin(), shards.end());
        MOEWB_CHECK(!shards.empty(), dir,
                    "no model.safetensors.index.json, model.safetensors or *.safetensors file in the directory");
    }

    std::map<std::string, size_t> shardIndex;
    for (const auto& s : shards) {
        shardIndex[s] = c.m_files.size();
        c.m_files.push_back(SafetensorsFile::open((root / s).string()));
        const auto& file = *c.m_files.back();
        for (const auto& t : file.tensors()) {
            const auto [it, inserted] = c.m_where.emplace(t.name, std::make_pair(c.m_files.size() - 1, &t));
            MOEWB_CHECK(inserted, dir, quoted(t.name), " is in two shards: '",
                        fs::path(c.m_files[it->second.first]->path()).filename().string(), "' and '", s, "'");
        }
    }
    for (const auto& [name, shard] : weightMap) {
        const auto& file = *c.m_files[shardIndex.at(shard)];
        MOEWB_CHECK(file.find(name), (indexPath).string(), "weight_map puts ", quoted(name), " in shard '", shard,
                    "' but that shard does not contain it");
    }
    return c;
}

bool Checkpoint::has(const std::string& name) const
{
    return m_where.count(name) != 0;
}

const TensorInfo& Checkpoint::info(const std::string& name) const
{
    const auto it = m_where.find(name);
    MOEWB_CHECK(it != m_where.end(), m_dir, "missing tensor '", name, "'");
    return *it->second.second;
}

const uint8_t* Checkpoint::data(const std::string& name) const
{
    const TensorInfo& t = info(name);
    return m_files[m_where.at(name).first]->data(t);
}

void Checkpoint::release(const std::string& name) const
{
    m_files[m_where.at(name).first]->release(info(name));
}

const SafetensorsFile& Checkpoint::fileOf(const std::string& name) const
{
    info(name); // throws the standard "missing tensor" error
    return *m_files[m_where.at(name).first];
}

std::vector<std::string> Checkpoint::names() const
{
    std::vector<std::string> out;
    out.reserve(m_where.size());
    for (const auto& kv : m_where)
        out.push_back(kv.first);
    return out;
}

// ---------------------------------------------------------------------------------------------
// SafetensorsWriter

struct SafetensorsWriter::Impl {
    struct Entry {
        DType dtype;
        std::vector<int64_t> shape;
        uint64_t nbytes = 0;
        uint64_t begin = 0;
        bool written = false;
    };

    std::string path;
    std::string tmpPath;
    std::map<std::string, std::string> metadata;
    std::map<std::string, Entry> entries;
    std::mutex mutex; // write() may run concurrently for different tensors
    int fd = -1;
    bool begun = false;
    bool committed = false;
    bool failed = false; // an I/O error left the temp file unusable
    uint64_t dataStart = 0;

    void pwriteAll(const void* bytes, uint64_t n, uint64_t offset)
    {
        const auto* p = static_cast<const uint8_t*>(bytes);
        while (n > 0) {
            // Linux caps one pwrite at ~2 GiB; expert stacks can be larger, so loop.
            const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, uint64_t(1) << 30));
            const ssize_t w = ::pwrite(fd, p, chunk, static_cast<off_t>(offset));
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                const int err = errno;
                failed = true;
                throw IoError(tmpPath, "write failed: " + osError(err));
            }
            p += w;
            n -= static_cast<uint64_t>(w);
            offset += static_cast<uint64_t>(w);
        }
    }
};

SafetensorsWriter::SafetensorsWriter(std::string path, std::map<std::string, std::string> metadata)
    : d(std::make_unique<Impl>())
{
    d->path = std::move(path);
    d->tmpPath = d->path + ".tmp." + std::to_string(::getpid());
    d->metadata = std::move(metadata);
}

SafetensorsWriter::~SafetensorsWriter()
{
    if (d->fd >= 0)
        ::close(d->fd);
    if (d->begun && !d->committed)
        ::unlink(d->tmpPath.c_str());
}

void SafetensorsWriter::declare(const std::string& name, DType dtype, const std::vector<int64_t>& shape)
{
    std::lock_guard<std::mutex> lock(d->mutex);
    MOEWB_CHECK(!d->begun, d->path, "cannot declare ", quoted(name), " after writing has begun");
    MOEWB_CHECK(name != "__metadata__", d->path, "'__metadata__' is reserved and cannot be a tensor name");
    MOEWB_CHECK(!d->entries.count(name), d->path, quoted(name), " declared twice");
    for (int64_t dim : shape)
        MOEWB_CHECK(dim >= 0, d->path, quoted(name), ": negative dimension in shape ", shapeString(shape));
    Impl::Entry e;
    e.dtype = dtype;
    e.shape = shape;
    MOEWB_CHECK(byteSize(shape, dtypeBytes(dtype), &e.nbytes), d->path, quoted(name), ": shape ", shapeString(shape),
                " of ", dtypeName(dtype), " overflows 64-bit size arithmetic");
    d->entries.emplace(name, std::move(e));
}

void SafetensorsWriter::begin()
{
    std::lock_guard<std::mutex> lock(d->mutex);
    if (d->begun)
        return;

    // Reference order (docs/formats.md §1.2): dtype alignment descending, then name byte-wise ascending.
    std::vector<std::pair<const std::string*, Impl::Entry*>> order;
    order.reserve(d->entries.size());
    for (auto& [name, e] : d->entries)
        order.emplace_back(&name, &e);
    std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
        if (a.second->dtype != b.second->dtype)
            return static_cast<int>(a.second->dtype) > static_cast<int>(b.second->dtype);
        return *a.first < *b.first;
    });

    // Built by hand: nlohmann sorts object keys, but the reference emits __metadata__ first, tensors
    // in offset order and dtype/shape/data_offsets inside each entry. Strings go through dump() with
    // ensure_ascii off, which escapes exactly like serde_json (\" \\ \b \f \n \r \t, \u00xx).
    auto str = [this](const std::string& s) {
        try {
            return json(s).dump();
        } catch (const json::exception&) {
            throw InputError(d->path, "name or metadata string is not valid UTF-8: '" + s + "'");
        }
    };
    std::string h = "{";
    if (!d->metadata.empty()) {
        h += "\"__metadata__\":{";
        bool first = true;
        for (const auto& [k, v] : d->metadata) {
            h += (first ? "" : ",") + str(k) + ":" + str(v);
            first = false;
        }
        h += "}";
    }
    uint64_t offset = 0;
    for (auto& [name, e] : order) {
        e->begin = offset;
        offset += e->nbytes;
        if (h.size() > 1)
            h += ",";
        h += str(*name) + ":{\"dtype\":\"" + dtypeName(e->dtype) + "\",\"shape\":[";
        for (size_t i = 0; i < e->shape.size(); ++i)
            h += (i ? "," : "") + std::to_string(e->shape[i]);
        h += "],\"data_offsets\":[" + std::to_string(e->begin) + "," + std::to_string(offset) + "]}";
    }
    h += "}";
    h.append((8 - h.size() % 8) % 8, ' ');
    MOEWB_CHECK(h.size() <= kMaxHeaderSize, d->path, "header would be ", h.size(),
                " bytes, over the 100000000-byte limit readers accept");

    d->fd = ::open(d->tmpPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (d->fd < 0)
        throw IoError(d->tmpPath, "cannot create: " + osError(errno));
    d->begun = true; // from now on the destructor removes the temp file

    uint8_t len[8];
    for (int i = 0; i < 8; ++i)
        len[i] = static_cast<uint8_t>(static_cast<uint64_t>(h.size()) >> (8 * i));
    d->pwriteAll(len, 8, 0);
    d->pwriteAll(h.data(), h.size(), 8);
    d->dataStart = 8 + h.size();
    // Size the file now so that tensors can land in any order and zero-size tail tensors count.
    if (::ftruncate(d->fd, static_cast<off_t>(d->dataStart + offset)) != 0) {
        const int err = errno;
        d->failed = true;
        throw IoError(d->tmpPath,
                      "cannot resize to " + std::to_string(d->dataStart + offset) + " bytes: " + osError(err));
    }
}

void SafetensorsWriter::write(const std::string& name, const void* bytes, uint64_t nbytes)
{
    begin();
    uint64_t offset = 0;
    {
        std::lock_guard<std::mutex> lock(d->mutex);
        MOEWB_CHECK(!d->committed, d->path, "write of ", quoted(name), " after commit()");
        MOEWB_CHECK(!d->failed, d->path, "write of ", quoted(name), " after an earlier write failed");
        const auto it = d->entries.find(name);
        MOEWB_CHECK(it != d->entries.end(), d->path, "write of undeclared ", quoted(name));
        Impl::Entry& e = it->second;
        MOEWB_CHECK(!e.written, d->path, quoted(name), " written twice");
        MOEWB_CHECK(nbytes == e.nbytes, d->path, quoted(name), ": got ", nbytes, " bytes but shape ",
                    shapeString(e.shape), " of ", dtypeName(e.dtype), " needs ", e.nbytes);
        // Claimed before the (unlocked) pwrite so a concurrent second write of the same name fails.
        e.written = true;
        offset = d->dataStart + e.begin;
    }
    if (nbytes > 0)
        d->pwriteAll(bytes, nbytes, offset);
}

void SafetensorsWriter::commit()
{
    begin();
    std::lock_guard<std::mutex> lock(d->mutex);
    MOEWB_CHECK(!d->committed, d->path, "commit() called twice");
    MOEWB_CHECK(!d->failed, d->path, "cannot commit after a failed write");
    std::vector<std::string> missing;
    for (const auto& [name, e] : d->entries)
        if (!e.written)
            missing.push_back(name);
    if (!missing.empty()) {
        std::string list;
        for (size_t i = 0; i < missing.size() && i < 5; ++i)
            list += (i ? ", '" : "'") + missing[i] + "'";
        if (missing.size() > 5)
            list += ", ...";
        throw InputError(d->path, "commit with " + std::to_string(missing.size()) + " of " +
                                      std::to_string(d->entries.size()) + " tensors never written: " + list);
    }
    if (::fsync(d->fd) != 0)
        throw IoError(d->tmpPath, "fsync failed: " + osError(errno));
    const int fd = d->fd;
    d->fd = -1;
    if (::close(fd) != 0)
        throw IoError(d->tmpPath, "close failed: " + osError(errno));
    if (::rename(d->tmpPath.c_str(), d->path.c_str()) != 0)
        throw IoError(d->path, "cannot rename " + d->tmpPath + " over it: " + osError(errno));
    d->committed = true;
    // Make the rename itself durable; failure here is not worth failing a completed write over.
    const std::string parent = fs::path(d->path).parent_path().string();
    const int dfd = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

} // namespace moewb
