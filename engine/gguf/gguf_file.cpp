// SPDX-License-Identifier: MIT
// GGUF v3 writer and reader (docs/export-gguf.md, "File layout"; ggml gguf.cpp's validation rules).
#include "gguf/gguf_file.h"

#include "moewb/core/atomic_file.h"
#include "moewb/core/error.h"

#include <cstdint>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace moewb::gguf {

// --- values -----------------------------------------------------------------------------------

const char* valueTypeName(ValueType t)
{
    switch (t) {
    case ValueType::UINT8: return "u8";
    case ValueType::INT8: return "i8";
    case ValueType::UINT16: return "u16";
    case ValueType::INT16: return "i16";
    case ValueType::UINT32: return "u32";
    case ValueType::INT32: return "i32";
    case ValueType::FLOAT32: return "f32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "str";
    case ValueType::ARRAY: return "arr";
    case ValueType::UINT64: return "u64";
    case ValueType::INT64: return "i64";
    case ValueType::FLOAT64: return "f64";
    }
    return "?";
}

namespace {

/// A name read from the file as it may appear in a one-line error message: control bytes and
/// bytes >= 0x7f are written as \xNN, and long names are cut (found by fuzz_gguf: a key holding
/// a newline split the message).
std::string shown(const std::string& s)
{
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < s.size() && out.size() < 200; ++i) {
        const unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch >= 0x7f) {
            out += "\\x";
            out += hex[ch >> 4];
            out += hex[ch & 15];
        } else {
            out += char(ch);
        }
    }
    if (out.size() >= 200)
        out += "...";
    return out;
}

bool isUnsigned(ValueType t)
{
    return t == ValueType::UINT8 || t == ValueType::UINT16 || t == ValueType::UINT32 || t == ValueType::UINT64;
}
bool isSigned(ValueType t)
{
    return t == ValueType::INT8 || t == ValueType::INT16 || t == ValueType::INT32 || t == ValueType::INT64;
}
int scalarBytes(ValueType t)
{
    switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    default: return 0;
    }
}
} // namespace

Value Value::u32(uint32_t v) { Value x; x.type = ValueType::UINT32; x.u = v; return x; }
Value Value::i32(int32_t v) { Value x; x.type = ValueType::INT32; x.i = v; return x; }
Value Value::u64(uint64_t v) { Value x; x.type = ValueType::UINT64; x.u = v; return x; }
Value Value::f32(float v) { Value x; x.type = ValueType::FLOAT32; x.f = v; return x; }
Value Value::boolean(bool v) { Value x; x.type = ValueType::BOOL; x.b = v; return x; }
Value Value::str(std::string v) { Value x; x.type = ValueType::STRING; x.s = std::move(v); return x; }

Value Value::strings(const std::vector<std::string>& v)
{
    Value x;
    x.type = ValueType::ARRAY;
    x.arrayType = ValueType::STRING;
    x.items.reserve(v.size());
    for (const std::string& s : v)
        x.items.push_back(str(s));
    return x;
}

Value Value::i32s(const std::vector<int32_t>& v)
{
    Value x;
    x.type = ValueType::ARRAY;
    x.arrayType = ValueType::INT32;
    x.items.reserve(v.size());
    for (int32_t e : v)
        x.items.push_back(i32(e));
    return x;
}

Value Value::f32s(const std::vector<float>& v)
{
    Value x;
    x.type = ValueType::ARRAY;
    x.arrayType = ValueType::FLOAT32;
    x.items.reserve(v.size());
    for (float e : v)
        x.items.push_back(f32(e));
    return x;
}

bool Value::isInteger() const { return isSigned(type) || isUnsigned(type); }

int64_t Value::asInt() const
{
    if (isSigned(type))
        return i;
    if (isUnsigned(type))
        return int64_t(u);
    throw InputError("GGUF", std::string("expected an integer value, found ") + valueTypeName(type));
}

double Value::asFloat() const
{
    if (type == ValueType::FLOAT32 || type == ValueType::FLOAT64)
        return f;
    return double(asInt());
}

std::string Value::toText(size_t maxItems) const
{
    char buf[64];
    switch (type) {
    case ValueType::FLOAT32:
    case ValueType::FLOAT64:
        std::snprintf(buf, sizeof buf, "%.9g", f);
        return buf;
    case ValueType::BOOL:
        return b ? "true" : "false";
    case ValueType::STRING: {
        std::string s1 = s.size() > 200 ? s.substr(0, 200) + "… (" + std::to_string(s.size()) + " bytes)" : s;
        for (char& c : s1)
            if (c == '\n' || c == '\r' || c == '\t')
                c = ' ';
        return "\"" + s1 + "\"";
    }
    case ValueType::ARRAY: {
        std::string out = std::string("[") + valueTypeName(arrayType) + " x " + std::to_string(items.size()) + "]";
        for (size_t k = 0; k < items.size() && k < maxItems; ++k)
            out += (k ? ", " : " ") + items[k].toText(maxItems);
        if (items.size() > maxItems)
            out += ", …";
        return out;
    }
    default:
        return isSigned(type) ? std::to_string(i) : std::to_string(u);
    }
}

int64_t TensorEntry::numel() const
{
    int64_t n = 1;
    for (int64_t e : ne)
        n *= e;
    return n;
}

namespace {
uint64_t alignUp(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// --- serialization ------------------------------------------------------------------------------

void putBytes(std::string& out, const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }
template <typename T>
void put(std::string& out, T v)
{
    putBytes(out, &v, sizeof v); // little-endian hosts only (x86-64, aarch64)
}
void putString(std::string& out, const std::string& s)
{
    put<uint64_t>(out, s.size());
    putBytes(out, s.data(), s.size());
}

void putScalar(std::string& out, const Value& v, ValueType t)
{
    switch (t) {
    case ValueType::UINT8: put<uint8_t>(out, uint8_t(v.u)); break;
    case ValueType::INT8: put<int8_t>(out, int8_t(v.i)); break;
    case ValueType::UINT16: put<uint16_t>(out, uint16_t(v.u)); break;
    case ValueType::INT16: put<int16_t>(out, int16_t(v.i)); break;
    case ValueType::UINT32: put<uint32_t>(out, uint32_t(v.u)); break;
    case ValueType::INT32: put<int32_t>(out, int32_t(v.i)); break;
    case ValueType::FLOAT32: put<float>(out, float(v.f)); break;
    case ValueType::BOOL: put<uint8_t>(out, v.b ? 1 : 0); break;
    case ValueType::STRING: putString(out, v.s); break;
    case ValueType::UINT64: put<uint64_t>(out, v.u); break;
    case ValueType::INT64: put<int64_t>(out, v.i); break;
    case ValueType::FLOAT64: put<double>(out, v.f); break;
    case ValueType::ARRAY:
        put<uint32_t>(out, uint32_t(v.arrayType));
        put<uint64_t>(out, v.items.size());
        for (const Value& e : v.items)
            putScalar(out, e, v.arrayType);
        break;
    }
}

void writeAllAt(int fd, const void* data, uint64_t n, uint64_t offset, const std::string& path)
{
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        const ssize_t w = ::pwrite(fd, p, size_t(std::min<uint64_t>(n, uint64_t(1) << 30)), off_t(offset));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            throw IoError(path, std::string("write failed (") + std::strerror(errno) + ")");
        }
        p += w;
        n -= uint64_t(w);
        offset += uint64_t(w);
    }
}
} // namespace

// --- writer ---------------------------------------------------------------------------------------

struct Writer::Impl {
    std::string path;
    std::string tmp;
    uint32_t alignment = kDefaultAlignment;
    std::vector<std::pair<std::string, Value>> kv;
    std::set<std::string> keys;
    std::vector<TensorEntry> tensors;
    std::map<std::string, size_t> index;
    std::vector<uint64_t> written;
    uint64_t dataOffset = 0;
    uint64_t size = 0;
    int fd = -1;
    bool begun = false;
    bool committed = false;

    std::string header() const
    {
        std::string h;
        put<uint32_t>(h, kMagic);
        put<uint32_t>(h, kVersion);
        put<uint64_t>(h, tensors.size());
        put<uint64_t>(h, kv.size());
        for (const auto& [k, v] : kv) {
            putString(h, k);
            put<uint32_t>(h, uint32_t(v.type));
            putScalar(h, v, v.type);
        }
        for (const TensorEntry& t : tensors) {
            putString(h, t.name);
            put<uint32_t>(h, uint32_t(t.ne.size()));
            for (int64_t e : t.ne)
                put<uint64_t>(h, uint64_t(e));
            put<uint32_t>(h, uint32_t(t.type));
            put<uint64_t>(h, t.offset);
        }
        return h;
    }
};

Writer::Writer(std::string path, uint32_t alignment)
    : d(std::make_unique<Impl>())
{
    MOEWB_ASSERT(alignment >= 8 && alignment % 8 == 0);
    d->path = std::move(path);
    removeStaleTemporaries(d->path);
    d->tmp = d->path + ".tmp." + std::to_string(::getpid());
    d->alignment = alignment;
    if (alignment != kDefaultAlignment)
        addKv("general.alignment", Value::u32(alignment));
}

Writer::~Writer()
{
    if (d->fd >= 0)
        ::close(d->fd);
    if (d->begun && !d->committed)
        ::unlink(d->tmp.c_str());
}

void Writer::addKv(const std::string& key, Value v)
{
    MOEWB_ASSERT(!d->begun && d->keys.insert(key).second);
    d->kv.emplace_back(key, std::move(v));
}

void Writer::addTensor(const std::string& name, const std::vector<int64_t>& ne, GgmlType type)
{
    MOEWB_ASSERT(!d->begun && !d->index.count(name));
    MOEWB_CHECK(name.size() < 64, name, "tensor name longer than 63 bytes (ggml's limit)");
    MOEWB_ASSERT(!ne.empty() && ne.size() <= 4 && ne[0] % ggmlBlockSize(type) == 0);
    TensorEntry t;
    t.name = name;
    t.ne = ne;
    t.type = type;
    t.nbytes = uint64_t(ggmlRowBytes(type, ne[0]));
    for (size_t k = 1; k < ne.size(); ++k)
        t.nbytes *= uint64_t(ne[k]);
    uint64_t off = 0;
    if (!d->tensors.empty())
        off = alignUp(d->tensors.back().offset + d->tensors.back().nbytes, d->alignment);
    t.offset = off;
    d->index[name] = d->tensors.size();
    d->tensors.push_back(std::move(t));
}

uint64_t Writer::plannedSize() const
{
    const uint64_t dataOffset = alignUp(d->header().size(), d->alignment);
    uint64_t end = 0;
    if (!d->tensors.empty())
        end = alignUp(d->tensors.back().offset + d->tensors.back().nbytes, d->alignment);
    return dataOffset + end;
}

void Writer::begin()
{
    MOEWB_ASSERT(!d->begun);
    const std::string h = d->header();
    d->dataOffset = alignUp(h.size(), d->alignment);
    d->size = plannedSize();
    d->fd = ::open(d->tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (d->fd < 0)
        throw IoError(d->tmp, std::string("cannot create file (") + std::strerror(errno) + ")");
    d->begun = true;
    writeAllAt(d->fd, h.data(), h.size(), 0, d->tmp);
    if (::ftruncate(d->fd, off_t(d->size)) != 0) // zero padding everywhere not written
        throw IoError(d->tmp, std::string("cannot size file (") + std::strerror(errno) + ")");
    d->written.assign(d->tensors.size(), 0);
}

const TensorEntry& Writer::tensor(const std::string& name) const
{
    auto it = d->index.find(name);
    MOEWB_ASSERT(it != d->index.end());
    return d->tensors[it->second];
}

void Writer::write(const std::string& name, uint64_t offset, const void* data, uint64_t n)
{
    if (!d->begun)
        begin();
    auto it = d->index.find(name);
    MOEWB_ASSERT(it != d->index.end());
    const TensorEntry& t = d->tensors[it->second];
    MOEWB_ASSERT(offset + n <= t.nbytes);
    writeAllAt(d->fd, data, n, d->dataOffset + t.offset + offset, d->tmp);
    d->written[it->second] += n;
}

void Writer::commit()
{
    if (!d->begun)
        begin();
    for (size_t k = 0; k < d->tensors.size(); ++k)
        if (d->written[k] != d->tensors[k].nbytes)
            throw Error(d->path + ": internal error: tensor '" + d->tensors[k].name + "' got "
                        + std::to_string(d->written[k]) + " of " + std::to_string(d->tensors[k].nbytes) + " bytes");
    if (::fsync(d->fd) != 0)
        throw IoError(d->tmp, std::string("fsync failed (") + std::strerror(errno) + ")");
    ::close(d->fd);
    d->fd = -1;
    if (std::rename(d->tmp.c_str(), d->path.c_str()) != 0)
        throw IoError(d->path, "cannot rename " + d->tmp + " (" + std::strerror(errno) + ")");
    d->committed = true;
}

const std::string& Writer::tempPath() const { return d->tmp; }

// --- reader ---------------------------------------------------------------------------------------

namespace {

class Cursor {
public:
    Cursor(std::FILE* f, uint64_t size, const std::string& path)
        : m_f(f), m_size(size), m_path(path)
    {
    }
    uint64_t pos() const { return m_pos; }
    void need(uint64_t n, const char* what)
    {
        if (n > m_size || m_pos > m_size - n)
            throw InputError(m_path, "truncated file: " + std::string(what) + " at byte " + std::to_string(m_pos)
                                         + " needs " + std::to_string(n) + " bytes, the file has "
                                         + std::to_string(m_size));
    }
    void bytes(void* out, uint64_t n, const char* what)
    {
        need(n, what);
        if (n && std::fread(out, 1, size_t(n), m_f) != n)
            throw IoError(m_path, "read failed at byte " + std::to_string(m_pos));
        m_pos += n;
    }
    template <typename T>
    T get(const char* what)
    {
        T v;
        bytes(&v, sizeof v, what);
        return v;
    }
    std::string str(const char* what)
    {
        const uint64_t n = get<uint64_t>(what);
        need(n, what);
        std::string s(size_t(n), '\0');
        bytes(s.data(), n, what);
        return s;
    }

private:
    std::FILE* m_f;
    uint64_t m_size;
    const std::string& m_path;
    uint64_t m_pos = 0;
};

Value readValue(Cursor& c, ValueType t, const std::string& key, const std::string& path, int depth)
{
    Value v;
    v.type = t;
    switch (t) {
    case ValueType::UINT8: v.u = c.get<uint8_t>("value"); break;
    case ValueType::INT8: v.i = c.get<int8_t>("value"); break;
    case ValueType::UINT16: v.u = c.get<uint16_t>("value"); break;
    case ValueType::INT16: v.i = c.get<int16_t>("value"); break;
    case ValueType::UINT32: v.u = c.get<uint32_t>("value"); break;
    case ValueType::INT32: v.i = c.get<int32_t>("value"); break;
    case ValueType::FLOAT32: v.f = c.get<float>("value"); break;
    case ValueType::UINT64: v.u = c.get<uint64_t>("value"); break;
    case ValueType::INT64: v.i = c.get<int64_t>("value"); break;
    case ValueType::FLOAT64: v.f = c.get<double>("value"); break;
    case ValueType::BOOL: {
        const uint8_t b = c.get<uint8_t>("value");
        if (b > 1)
            throw InputError(path, "metadata '" + shown(key) + "': bool value " + std::to_string(b) + " is not 0 or 1");
        v.b = b != 0;
        break;
    }
    case ValueType::STRING: v.s = c.str("string value"); break;
    case ValueType::ARRAY: {
        if (depth > 0)
            throw InputError(path, "metadata '" + shown(key) + "': nested arrays are not supported");
        const uint32_t et = c.get<uint32_t>("array type");
        if (et > uint32_t(ValueType::FLOAT64))
            throw InputError(path, "metadata '" + shown(key) + "': unknown array element type " + std::to_string(et));
        v.arrayType = ValueType(et);
        const uint64_t n = c.get<uint64_t>("array length");
        const int eb = scalarBytes(v.arrayType);
        const uint64_t per = eb ? uint64_t(eb) : 8; // strings need at least their 8-byte length
        if (n > UINT64_MAX / per) // n · per would wrap around (found by fuzz_gguf)
            throw InputError(path, "metadata '" + shown(key) + "': array length " + std::to_string(n) + " is impossible");
        c.need(n * per, "array");
        v.items.reserve(size_t(n));
        for (uint64_t k = 0; k < n; ++k)
            v.items.push_back(readValue(c, v.arrayType, key, path, depth + 1));
        break;
    }
    default:
        throw InputError(path, "metadata '" + shown(key) + "': unknown value type " + std::to_string(uint32_t(t)));
    }
    return v;
}

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};

} // namespace

const Value* File::find(const std::string& key) const
{
    for (const auto& [k, v] : kv)
        if (k == key)
            return &v;
    return nullptr;
}

const TensorEntry* File::findTensor(const std::string& name) const
{
    for (const TensorEntry& t : tensors)
        if (t.name == name)
            return &t;
    return nullptr;
}

File read(const std::string& path)
{
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
    if (!f)
        throw IoError(path, std::string("cannot open (") + std::strerror(errno) + ")");
    struct stat st {};
    if (::fstat(::fileno(f.get()), &st) != 0 || !S_ISREG(st.st_mode))
        throw IoError(path, "not a regular file");
    File out;
    out.path = path;
    out.fileSize = uint64_t(st.st_size);
    Cursor c(f.get(), out.fileSize, path);

    if (out.fileSize < 4)
        throw InputError(path, "not a GGUF file (" + std::to_string(out.fileSize) + " bytes, no magic)");
    const uint32_t magic = c.get<uint32_t>("magic");
    if (magic != kMagic) {
        char buf[80];
        std::snprintf(buf, sizeof buf, "not a GGUF file (bad magic 0x%08x, expected 0x%08x \"GGUF\")", magic, kMagic);
        throw InputError(path, buf);
    }
    out.version = c.get<uint32_t>("version");
    if (out.version != 2 && out.version != 3)
        throw InputError(path, "unsupported GGUF version " + std::to_string(out.version) + " (2 and 3 are read)");
    const uint64_t nTensors = c.get<uint64_t>("tensor count");
    const uint64_t nKv = c.get<uint64_t>("metadata count");
    // Every KV needs at least 8 + 4 + 1 bytes and every tensor info 8 + 4 + 8 + 4 + 8.
    if (nKv > out.fileSize / 13 || nTensors > out.fileSize / 32)
        throw InputError(path, "truncated or corrupt header: " + std::to_string(nKv) + " metadata entries and "
                                   + std::to_string(nTensors) + " tensors cannot fit in "
                                   + std::to_string(out.fileSize) + " bytes");
    std::set<std::string> keys;
    for (uint64_t k = 0; k < nKv; ++k) {
        std::string key = c.str("metadata key");
        if (!keys.insert(key).second)
            throw InputError(path, "duplicate metadata key '" + shown(key) + "'");
        const uint32_t t = c.get<uint32_t>("value type");
        if (t > uint32_t(ValueType::FLOAT64))
            throw InputError(path, "metadata '" + shown(key) + "': unknown value type " + std::to_string(t));
        Value v = readValue(c, ValueType(t), key, path, 0);
        out.kv.emplace_back(std::move(key), std::move(v));
    }
    if (const Value* a = out.find("general.alignment")) {
        if (a->type != ValueType::UINT32 || a->u == 0 || a->u % 8 != 0)
            throw InputError(path, "general.alignment must be a u32 multiple of 8, got " + a->toText());
        out.alignment = uint32_t(a->u);
    }
    std::set<std::string> names;
    for (uint64_t k = 0; k < nTensors; ++k) {
        TensorEntry t;
        t.name = c.str("tensor name");
        if (t.name.size() >= 64)
            throw InputError(path, "tensor name '" + shown(t.name.substr(0, 64)) + "…' longer than 63 bytes");
        if (!names.insert(t.name).second)
            throw InputError(path, "duplicate tensor '" + shown(t.name) + "'");
        const uint32_t nd = c.get<uint32_t>("tensor dims");
        if (nd == 0 || nd > 4)
            throw InputError(path, "tensor '" + shown(t.name) + "': " + std::to_string(nd) + " dimensions (1 to 4 allowed)");
        for (uint32_t j = 0; j < nd; ++j) {
            const uint64_t e = c.get<uint64_t>("tensor shape");
            if (e == 0 || e > (uint64_t(1) << 40))
                throw InputError(path, "tensor '" + shown(t.name) + "': bad dimension " + std::to_string(e));
            t.ne.push_back(int64_t(e));
        }
        const uint32_t ty = c.get<uint32_t>("tensor type");
        if (!ggmlTypeKnown(ty))
            throw InputError(path, "tensor '" + shown(t.name) + "': unknown ggml type " + std::to_string(ty));
        t.type = GgmlType(ty);
        if (t.ne[0] % ggmlBlockSize(t.type) != 0)
            throw InputError(path, "tensor '" + shown(t.name) + "': ne[0] = " + std::to_string(t.ne[0])
                                       + " is not a multiple of the " + ggmlTypeName(t.type) + " block size "
                                       + std::to_string(ggmlBlockSize(t.type)));
        t.offset = c.get<uint64_t>("tensor offset");
        long double nb = (long double)(t.ne[0] / ggmlBlockSize(t.type)) * ggmlTypeSize(t.type);
        for (uint32_t j = 1; j < nd; ++j)
            nb *= t.ne[j];
        if (nb > (long double)out.fileSize)
            throw InputError(path, "tensor '" + shown(t.name) + "': size exceeds the file");
        t.nbytes = uint64_t(nb);
        out.tensors.push_back(std::move(t));
    }
    out.dataOffset = alignUp(c.pos(), out.alignment);
    uint64_t expected = 0;
    for (const TensorEntry& t : out.tensors) {
        if (t.offset != expected)
            throw InputError(path, "tensor '" + shown(t.name) + "' has offset " + std::to_string(t.offset) + ", expected "
                                       + std::to_string(expected)
                                       + " (tensors must be contiguous, each padded to the alignment "
                                       + std::to_string(out.alignment) + ")");
        if (out.dataOffset + t.offset + t.nbytes > out.fileSize)
            throw InputError(path, "truncated file: tensor '" + shown(t.name) + "' ends at byte "
                                       + std::to_string(out.dataOffset + t.offset + t.nbytes) + ", the file has "
                                       + std::to_string(out.fileSize));
        expected = alignUp(t.offset + t.nbytes, out.alignment);
    }
    if (out.tensors.empty() && out.dataOffset > out.fileSize && nTensors > 0)
        throw InputError(path, "truncated file");
    return out;
}

namespace {

/// nbytes bytes of the data section from `offset` (relative to the data section) into out.
void readDataBytes(const File& f, const TensorEntry& t, uint64_t offset, uint8_t* out, size_t nbytes)
{
    std::unique_ptr<std::FILE, FileCloser> fp(std::fopen(f.path.c_str(), "rb"));
    if (!fp)
        throw IoError(f.path, std::string("cannot open (") + std::strerror(errno) + ")");
    if (::fseeko(fp.get(), off_t(f.dataOffset + offset), SEEK_SET) != 0 || std::fread(out, 1, nbytes, fp.get()) != nbytes)
        throw IoError(f.path, "cannot read tensor '" + shown(t.name) + "' (truncated?)");
}

} // namespace

std::vector<uint8_t> readTensorBytes(const File& f, const TensorEntry& t)
{
    std::vector<uint8_t> out(static_cast<size_t>(t.nbytes));
    readDataBytes(f, t, t.offset, out.data(), out.size());
    return out;
}

void readRowsF32(const File& f, const TensorEntry& t, int64_t firstRow, int64_t rows, float* out)
{
    if (!ggmlCanDequantize(t.type))
        throw InputError(f.path, "tensor '" + shown(t.name) + "': cannot dequantize type " + ggmlTypeName(t.type));
    const int64_t n = t.ne[0], total = t.numel() / n;
    MOEWB_CHECK(firstRow >= 0 && rows >= 0 && firstRow + rows <= total, f.path, "tensor '", shown(t.name), "': rows [",
                firstRow, ", ", firstRow + rows, ") outside its ", total, " rows");
    const int64_t rb = ggmlRowBytes(t.type, n);
    std::vector<uint8_t> bytes(static_cast<size_t>(rows * rb));
    readDataBytes(f, t, t.offset + uint64_t(firstRow * rb), bytes.data(), bytes.size());
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t bad = firstNonFiniteScaleBlock(t.type, bytes.data() + r * rb, n);
        if (bad >= 0)
            throw InputError(f.path, "tensor '" + shown(t.name) + "': " + ggmlTypeName(t.type) + " block "
                                         + std::to_string((firstRow + r) * (n / ggmlBlockSize(t.type)) + bad)
                                         + " has a non-finite scale (NaN or infinity)");
        dequantizeRow(t.type, bytes.data() + r * rb, out + r * n, n);
    }
}

std::vector<float> readTensorF32(const File& f, const TensorEntry& t)
{
    std::vector<float> out(static_cast<size_t>(t.numel()));
    readRowsF32(f, t, 0, t.numel() / t.ne[0], out.data());
    return out;
}

} // namespace moewb::gguf
