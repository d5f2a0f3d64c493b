// SPDX-License-Identifier: MIT
// stats.h5 writer and reader. The layout is documented once, in moewb/stats/stats_h5.h.
#include "moewb/stats/stats_h5.h"

#include "moewb/core/atomic_file.h"
#include "moewb/core/error.h"

#include <H5Cpp.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace moewb {
namespace {

using Dims = std::vector<hsize_t>;

// HDF5 prints its whole error stack to stderr by default; we report one line instead. The setting
// lives on the calling thread's error stack (thread-safe build), so it is applied on every entry.
void silenceHdf5()
{
    H5::Exception::dontPrint();
}

herr_t innermostCb(unsigned n, const H5E_error2_t* err, void* data)
{
    if (n == 0 && err && err->desc)
        *static_cast<std::string*>(data) = err->desc;
    return 0;
}

// The most specific message on the current HDF5 error stack (where the error was detected), which
// says far more than the C++ wrapper's "H5Fopen failed". Call before any other HDF5 call.
std::string innermostHdf5Error()
{
    std::string msg;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermostCb, &msg);
    return msg;
}

std::string hdf5Message(const H5::Exception& e)
{
    std::string m = e.getFuncName();
    const std::string d = e.getDetailMsg();
    if (!d.empty())
        m += m.empty() ? d : ": " + d;
    return m.empty() ? "HDF5 error" : m;
}

std::string dimsText(const Dims& d)
{
    std::string s = "[";
    for (size_t i = 0; i < d.size(); ++i)
        s += (i ? ", " : "") + std::to_string(d[i]);
    return s + "]";
}

std::string child(const std::string& parent, const std::string& name)
{
    return parent == "/" ? "/" + name : parent + "/" + name;
}

// ---- types ------------------------------------------------------------------------------------

template <typename T>
struct H5Of;
template <>
struct H5Of<int64_t> {
    static const H5::PredType& file() { return H5::PredType::STD_I64LE; }
    static const H5::PredType& mem() { return H5::PredType::NATIVE_INT64; }
    static constexpr H5T_class_t cls = H5T_INTEGER;
    static constexpr const char* name = "int64";
};
template <>
struct H5Of<double> {
    static const H5::PredType& file() { return H5::PredType::IEEE_F64LE; }
    static const H5::PredType& mem() { return H5::PredType::NATIVE_DOUBLE; }
    static constexpr H5T_class_t cls = H5T_FLOAT;
    static constexpr const char* name = "float64";
};
template <>
struct H5Of<float> {
    static const H5::PredType& file() { return H5::PredType::IEEE_F32LE; }
    static const H5::PredType& mem() { return H5::PredType::NATIVE_FLOAT; }
    static constexpr H5T_class_t cls = H5T_FLOAT;
    static constexpr const char* name = "float32";
};

/// Fixed-length UTF-8, NUL-padded, `width` bytes (>= 1). format_version 2 stores every string so:
/// variable-length strings live in HDF5's global heap, which libhdf5 1.10 reads without bounds
/// checks (a corrupt heap crashed H5HG_read under the fuzzer, docs/robustness.md).
H5::StrType utf8Type(size_t width)
{
    H5::StrType t(H5::PredType::C_S1, std::max<size_t>(width, 1));
    t.setCset(H5T_CSET_UTF8);
    t.setStrpad(H5T_STR_NULLPAD);
    return t;
}

const char* className(H5T_class_t c)
{
    switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    case H5T_ARRAY: return "array";
    case H5T_VLEN: return "vlen";
    default: return "other";
    }
}

// ---- validation ---------------------------------------------------------------------------------

[[noreturn]] void invalid(const std::string& what)
{
    throw Error("stats", what);
}

template <typename V>
void checkSize(const V& v, size_t n, const std::string& what)
{
    if (v.size() != n)
        invalid(what + " has " + std::to_string(v.size()) + " values, expected " + std::to_string(n));
}

template <typename T>
void checkMatrix(const Matrix<T>& m, int64_t rows, int64_t cols, const std::string& what)
{
    if (m.rows != rows || m.cols != cols)
        invalid(what + " is " + std::to_string(m.rows) + " x " + std::to_string(m.cols) + ", expected "
                + std::to_string(rows) + " x " + std::to_string(cols));
    checkSize(m.data, size_t(rows * cols), what);
}

// ---- writer -------------------------------------------------------------------------------------

// Note [Deterministic files]: HDF5 stamps every object header with its creation time unless told
// not to. Same statistics must give a byte-identical file (docs/architecture.md, Conventions), so
// groups, datasets and the root group are all created with time tracking off.
H5::DSetCreatPropList datasetProps()
{
    H5::DSetCreatPropList p;
    H5Pset_obj_track_times(p.getId(), false);
    return p;
}

H5::Group makeGroup(const H5::H5Location& parent, const std::string& name)
{
    const hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_obj_track_times(gcpl, false);
    const hid_t gid = H5Gcreate2(parent.getId(), name.c_str(), H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    if (gid < 0)
        throw H5::GroupIException("H5Gcreate2", "cannot create group " + name);
    // The C++ wrapper may or may not take its own reference; leave exactly one, owned by it, or the
    // file would stay open after the last wrapper is gone.
    const int before = H5Iget_ref(gid);
    H5::Group g(gid);
    if (H5Iget_ref(gid) > before)
        H5Idec_ref(gid);
    return g;
}

void putStr(H5::H5Object& obj, const char* name, const std::string& v)
{
    const H5::StrType t = utf8Type(v.size());
    H5::Attribute a = obj.createAttribute(name, t, H5::DataSpace(H5S_SCALAR));
    std::vector<char> buf(std::max<size_t>(v.size(), 1), '\0');
    std::copy(v.begin(), v.end(), buf.begin());
    a.write(t, buf.data());
}

template <typename T>
void putScalar(H5::H5Object& obj, const char* name, T v)
{
    H5::Attribute a = obj.createAttribute(name, H5Of<T>::file(), H5::DataSpace(H5S_SCALAR));
    a.write(H5Of<T>::mem(), &v);
}

template <typename T>
void putArray(H5::Group& g, const char* name, const T* data, const Dims& dims)
{
    H5::DataSpace space(int(dims.size()), dims.data());
    H5::DataSet ds = g.createDataSet(name, H5Of<T>::file(), space, datasetProps());
    // HDF5 rejects a null buffer even for zero elements, and an empty vector may have one.
    if (space.getSimpleExtentNpoints() > 0)
        ds.write(data, H5Of<T>::mem());
}

template <typename T>
void putVector(H5::Group& g, const char* name, const std::vector<T>& v)
{
    putArray(g, name, v.data(), {hsize_t(v.size())});
}

template <typename T>
void putMatrix(H5::Group& g, const char* name, const Matrix<T>& m)
{
    putArray(g, name, m.data.data(), {hsize_t(m.rows), hsize_t(m.cols)});
}

void putStrings(H5::Group& g, const char* name, const std::vector<std::string>& v)
{
    size_t width = 1;
    for (const std::string& s : v)
        width = std::max(width, s.size());
    std::vector<char> buf(v.size() * width, '\0');
    for (size_t i = 0; i < v.size(); ++i)
        std::copy(v[i].begin(), v[i].end(), buf.begin() + std::ptrdiff_t(i * width));
    const hsize_t n = v.size();
    const H5::StrType t = utf8Type(width);
    H5::DataSet ds = g.createDataSet(name, t, H5::DataSpace(1, &n), datasetProps());
    if (n > 0)
        ds.write(buf.data(), t);
}

template <typename T, typename F>
std::vector<T> column(const std::vector<LinearStats>& rows, F f)
{
    std::vector<T> out;
    out.reserve(rows.size());
    for (const LinearStats& r : rows)
        out.push_back(f(r));
    return out;
}

void writeRoot(H5::H5File& file, const CalibStats& s)
{
    const StatsProvenance& p = s.provenance;
    putScalar<int64_t>(file, h5::kFormatVersion, kStatsFormatVersion);
    putStr(file, h5::kFormat, h5::kFormatValue);
    putStr(file, h5::kToolVersion, p.toolVersion);
    putStr(file, h5::kCreated, p.created);
    putStr(file, h5::kModelPath, p.modelPath);
    putStr(file, h5::kArchitecture, p.architecture);
    putStr(file, h5::kModelType, p.modelType);
    putStr(file, h5::kDataDescription, p.dataDescription);
    putStr(file, h5::kComputeDtype, p.computeDtype);
    putStr(file, h5::kDevice, p.device);
    putStr(file, h5::kOptionsJson, p.optionsJson);
    putScalar<int64_t>(file, h5::kNumSamples, p.numSamples);
    putScalar<int64_t>(file, h5::kSeqLen, p.seqLen);
    putScalar<int64_t>(file, h5::kSeed, p.seed);
    putScalar<int64_t>(file, h5::kNumTokens, p.numTokens);
    putScalar<int64_t>(file, h5::kNumLayers, s.numLayers);
    putScalar<int64_t>(file, h5::kHiddenSize, s.hiddenSize);
    putScalar<int64_t>(file, h5::kRandomWindows, p.randomWindows ? 1 : 0);

    H5::Group data = makeGroup(file, h5::kDataGroup);
    std::vector<std::string> paths, formats, domains, algos, hashes;
    std::vector<int64_t> bytes;
    for (const CalibDataFile& f : p.dataFiles) {
        paths.push_back(f.path);
        formats.push_back(f.format);
        domains.push_back(f.domain);
        algos.push_back(f.hashAlgo);
        hashes.push_back(f.hash);
        bytes.push_back(f.bytes);
    }
    putStrings(data, h5::kFilePath, paths);
    putStrings(data, h5::kFileFormat, formats);
    putStrings(data, h5::kFileDomain, domains);
    putStrings(data, h5::kFileHashAlgo, algos);
    putStrings(data, h5::kFileHash, hashes);
    putVector(data, h5::kFileBytes, bytes);
    putStrings(data, h5::kDomains, p.domains);
    putVector(data, h5::kDomainTokenCounts, p.domainTokenCounts);
}

void writeLayer(H5::Group& layers, const LayerStats& l)
{
    H5::Group g = makeGroup(layers, std::to_string(l.layer));
    putScalar<int64_t>(g, h5::kLayer, l.layer);
    putScalar<int64_t>(g, h5::kIsMoe, l.isMoe ? 1 : 0);
    putScalar<double>(g, h5::kBlockCosAttn, l.cosine.attn);
    putScalar<double>(g, h5::kBlockCosMlp, l.cosine.mlp);
    putScalar<double>(g, h5::kBlockCosWhole, l.cosine.block);
    putScalar<int64_t>(g, h5::kBlockCosTokens, l.cosine.tokens);
    if (!l.isMoe)
        return;
    const RouterStats& r = l.router;
    putScalar<int64_t>(g, h5::kNumExperts, r.numExperts);
    putScalar<int64_t>(g, h5::kTopK, r.topK);
    putScalar<int64_t>(g, h5::kRouterTokens, r.tokens);
    putScalar<double>(g, h5::kRouterEntropy, r.routerEntropy);
    putScalar<int64_t>(g, h5::kCorrelationTokens, r.correlationTokens);
    putStr(g, h5::kCorrelationMethod, r.correlationMethod);
    putScalar<int64_t>(g, h5::kNextMoeLayer, r.nextMoeLayer);
    putVector(g, h5::kExpertTokens, r.expertTokens);
    putVector(g, h5::kExpertTop1, r.expertTop1);
    putVector(g, h5::kExpertWeightMass, r.expertWeightMass);
    putVector(g, h5::kExpertProbMass, r.expertProbMass);
    putMatrix(g, h5::kDomainTokens, r.domainTokens);
    putMatrix(g, h5::kCoactivation, r.coactivation);
    putMatrix(g, h5::kCorrelation, r.correlation);
    putMatrix(g, h5::kTransitions, r.transitions);
    putVector(g, h5::kDeadExperts, r.deadExperts);
}

/// The optional Fisher diagonals (calibrate --fisher): attributes on /linears and one flat array
/// with per-row offsets, like the activation statistics (the Fisher is far smaller: [out] per row).
void writeFisher(H5::Group& g, const CalibStats& s)
{
    if (!s.hasFisher())
        return;
    putScalar<int64_t>(g, h5::kFisherTokens, s.fisher.tokens);
    putStr(g, h5::kFisherLabels, s.fisher.labels);
    putScalar<int64_t>(g, h5::kFisherSeed, s.fisher.seed);
    std::vector<int64_t> offsets, channels;
    std::vector<float> all;
    for (const LinearStats& r : s.linears) {
        offsets.push_back(int64_t(all.size()));
        channels.push_back(int64_t(r.fisher.size()));
        all.insert(all.end(), r.fisher.begin(), r.fisher.end());
    }
    putVector(g, h5::kFisherOffset, offsets);
    putVector(g, h5::kFisherChannels, channels);
    putVector(g, h5::kFisher, all);
}

// Channel statistics of all linears go into two flat arrays. They are written in slabs of about
// kSlabValues so the writer never holds a second copy of the whole (hundreds of MB) data.
constexpr size_t kSlabValues = size_t(8) << 20;

void writeLinears(H5::H5File& file, const CalibStats& s, const ProgressFn& progress, int64_t& step,
                  int64_t steps)
{
    const std::vector<LinearStats>& rows = s.linears;
    H5::Group g = makeGroup(file, h5::kLinearsGroup);
    putStr(g, h5::kOutlierMetric, s.outlier.metric);
    putStr(g, h5::kOutlierDtype, s.outlier.computeDtype);
    putScalar<double>(g, h5::kOutlierEps, s.outlier.eps);

    putStrings(g, h5::kName, column<std::string>(rows, [](const LinearStats& r) { return r.name; }));
    putStrings(g, h5::kRole, column<std::string>(rows, [](const LinearStats& r) { return r.role; }));
    putVector(g, h5::kLayer, column<int64_t>(rows, [](const LinearStats& r) { return r.layer; }));
    putVector(g, h5::kExpert, column<int64_t>(rows, [](const LinearStats& r) { return r.expert; }));
    putVector(g, h5::kInFeatures, column<int64_t>(rows, [](const LinearStats& r) { return r.inFeatures; }));
    putVector(g, h5::kOutFeatures, column<int64_t>(rows, [](const LinearStats& r) { return r.outFeatures; }));
    putVector(g, h5::kTokens, column<int64_t>(rows, [](const LinearStats& r) { return r.tokens; }));
    putVector(g, h5::kOutlierScore, column<float>(rows, [](const LinearStats& r) { return r.outlierScore; }));
    putVector(g, h5::kOutlierColumn, column<int64_t>(rows, [](const LinearStats& r) { return r.outlierColumn; }));

    std::vector<int64_t> offsets, channels;
    offsets.reserve(rows.size());
    channels.reserve(rows.size());
    int64_t total = 0;
    for (const LinearStats& r : rows) {
        offsets.push_back(total);
        channels.push_back(int64_t(r.actAbsMax.size()));
        total += int64_t(r.actAbsMax.size());
    }
    putVector(g, h5::kActOffset, offsets);
    putVector(g, h5::kActChannels, channels);

    const hsize_t n = hsize_t(total);
    const H5::DataSpace fileSpace(1, &n);
    H5::DataSet absmax = g.createDataSet(h5::kActAbsMax, H5Of<float>::file(), fileSpace, datasetProps());
    H5::DataSet sqmean = g.createDataSet(h5::kActSqMean, H5Of<float>::file(), fileSpace, datasetProps());
    std::vector<float> bufA, bufS;
    hsize_t slabStart = 0;
    auto flush = [&] {
        if (bufA.empty())
            return;
        hsize_t count = bufA.size();
        H5::DataSpace sel = fileSpace;
        sel.selectHyperslab(H5S_SELECT_SET, &count, &slabStart);
        const H5::DataSpace mem(1, &count);
        absmax.write(bufA.data(), H5Of<float>::mem(), mem, sel);
        sqmean.write(bufS.data(), H5Of<float>::mem(), mem, sel);
        slabStart += count;
        bufA.clear();
        bufS.clear();
        report(progress, "write stats", ++step, steps, "linears");
    };
    for (const LinearStats& r : rows) {
        bufA.insert(bufA.end(), r.actAbsMax.begin(), r.actAbsMax.end());
        bufS.insert(bufS.end(), r.actSqMean.begin(), r.actSqMean.end());
        if (bufA.size() >= kSlabValues)
            flush();
    }
    flush();
    writeFisher(g, s);
}

int64_t linearSlabs(const CalibStats& s)
{
    size_t total = 0;
    for (const LinearStats& r : s.linears)
        total += r.actAbsMax.size();
    return int64_t(total / kSlabValues + 1);
}

std::string errnoText()
{
    return std::strerror(errno);
}

} // namespace
} // namespace moewb

// libhdf5's metadata checksum (Jenkins lookup3), exported by libhdf5 but declared only in its
// private headers.
extern "C" uint32_t H5_checksum_metadata(const void* data, size_t len, uint32_t initval);

namespace moewb {
namespace {

// libhdf5 1.10.8's H5Fget_file_image clears the superblock's file-consistency flags in the image
// of a file open for writing (superblock v3) without updating the superblock checksum, so the
// image does not open ("incorrect metadata checksum"). Recompute it: the checksum covers the
// signature, version, size-of-offsets/lengths, flags and four addresses (12 + 4·O bytes).
void fixSuperblockChecksum(std::vector<char>& image, const std::string& path)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    MOEWB_CHECK(image.size() >= 16 && std::memcmp(image.data(), sig, 8) == 0 && image[8] == 3, path,
                "unexpected HDF5 file image (superblock version ", int(image.size() > 8 ? image[8] : -1), ")");
    const size_t n = 12 + 4 * size_t(uint8_t(image[9]));
    MOEWB_CHECK(image.size() >= n + 4, path, "HDF5 file image too short");
    const uint32_t c = H5_checksum_metadata(image.data(), n, 0);
    for (int i = 0; i < 4; ++i)
        image[n + size_t(i)] = char((c >> (8 * i)) & 0xff);
}


// ---- reader -------------------------------------------------------------------------------------

struct Loc {
    H5::Group g;
    std::string path; ///< HDF5 path for messages, e.g. "/layers/3"
};

class Reader {
public:
    explicit Reader(std::string file)
        : m_file(std::move(file))
    {
    }

    [[noreturn]] void fail(const std::string& problem) const { throw InputError(m_file, problem); }

    Loc group(const Loc& parent, const std::string& name) const
    {
        const std::string p = child(parent.path, name);
        if (!parent.g.nameExists(name))
            fail("missing group " + p);
        if (parent.g.childObjType(name) != H5O_TYPE_GROUP)
            fail(p + " is not a group");
        return {parent.g.openGroup(name), p};
    }

    H5::Attribute attr(const Loc& loc, const char* name, H5T_class_t cls, const char* expected) const
    {
        if (!loc.g.attrExists(name))
            fail("missing attribute '" + std::string(name) + "' on " + loc.path);
        H5::Attribute a = loc.g.openAttribute(name);
        const H5T_class_t c = a.getTypeClass();
        const bool ok = c == cls || (cls == H5T_FLOAT && c == H5T_INTEGER);
        if (!ok)
            fail("attribute '" + std::string(name) + "' on " + loc.path + " is " + className(c) + ", expected "
                 + expected);
        if (a.getSpace().getSimpleExtentNpoints() != 1)
            fail("attribute '" + std::string(name) + "' on " + loc.path + " is not a single value");
        return a;
    }

    int64_t i64(const Loc& loc, const char* name) const
    {
        int64_t v = 0;
        attr(loc, name, H5T_INTEGER, "an integer").read(H5::PredType::NATIVE_INT64, &v);
        return v;
    }

    double f64(const Loc& loc, const char* name) const
    {
        double v = 0;
        attr(loc, name, H5T_FLOAT, "a number").read(H5::PredType::NATIVE_DOUBLE, &v);
        return v;
    }

    std::string str(const Loc& loc, const char* name) const
    {
        H5::Attribute a = attr(loc, name, H5T_STRING, "a string");
        const H5::StrType t = a.getStrType();
        if (t.isVariableStr()) {
            fail("attribute '" + std::string(name) + "' on " + loc.path
                 + " is a variable-length string (format_version 2 stores fixed-length strings)");
        }
        const size_t w = t.getSize();
        if (w == 0 || w > (size_t(1) << 20))
            fail("attribute '" + std::string(name) + "' on " + loc.path + " has an invalid string size");
        std::vector<char> raw(w, '\0');
        a.read(t, raw.data());
        return std::string(raw.data(), strnlen(raw.data(), w));
    }

    H5::DataSet dataset(const Loc& loc, const char* name, H5T_class_t cls, const char* typeName,
                        const Dims& expect) const
    {
        const std::string p = child(loc.path, name);
        if (!loc.g.nameExists(name))
            fail("missing dataset " + p);
        if (loc.g.childObjType(name) != H5O_TYPE_DATASET)
            fail(p + " is not a dataset");
        H5::DataSet ds = loc.g.openDataSet(name);
        const H5T_class_t c = ds.getTypeClass();
        if (c != cls && !(cls == H5T_FLOAT && c == H5T_INTEGER))
            fail("dataset " + p + " is " + className(c) + ", expected " + typeName);
        const Dims got = dims(ds);
        if (got != expect)
            fail("dataset " + p + " has shape " + dimsText(got) + ", expected " + dimsText(expect));
        return ds;
    }

    static Dims dims(const H5::DataSet& ds)
    {
        const H5::DataSpace sp = ds.getSpace();
        Dims d(size_t(std::max(0, sp.getSimpleExtentNdims())));
        if (!d.empty())
            sp.getSimpleExtentDims(d.data());
        return d;
    }

    /// The shape of a dataset that must exist, for fields whose size is only known from the file.
    Dims shapeOf(const Loc& loc, const char* name) const
    {
        const std::string p = child(loc.path, name);
        if (!loc.g.nameExists(name) || loc.g.childObjType(name) != H5O_TYPE_DATASET)
            fail("missing dataset " + p);
        return dims(loc.g.openDataSet(name));
    }

    template <typename T>
    std::vector<T> array(const Loc& loc, const char* name, const Dims& expect) const
    {
        H5::DataSet ds = dataset(loc, name, H5Of<T>::cls, H5Of<T>::name, expect);
        size_t n = 1;
        for (hsize_t d : expect)
            n *= size_t(d);
        std::vector<T> v(n);
        if (n > 0)
            ds.read(v.data(), H5Of<T>::mem());
        return v;
    }

    template <typename T>
    Matrix<T> matrix(const Loc& loc, const char* name, int64_t rows, int64_t cols) const
    {
        Matrix<T> m;
        m.rows = rows;
        m.cols = cols;
        m.data = array<T>(loc, name, {hsize_t(rows), hsize_t(cols)});
        return m;
    }

    std::vector<std::string> strings(const Loc& loc, const char* name, hsize_t n) const
    {
        H5::DataSet ds = dataset(loc, name, H5T_STRING, "string", {n});
        std::vector<std::string> out(n);
        if (n == 0)
            return out;
        const H5::StrType t = ds.getStrType();
        if (t.isVariableStr()) {
            // Never read: variable-length strings live in HDF5's global heap, which libhdf5 1.10
            // reads without bounds checks.
            fail("dataset " + child(loc.path, name)
                 + " holds variable-length strings (format_version 2 stores fixed-length strings)");
        } else {
            // Fixed-length strings (h5py's "S" arrays): NUL-padded.
            const size_t w = t.getSize();
            std::vector<char> raw(n * w);
            ds.read(raw.data(), t);
            for (size_t i = 0; i < n; ++i) {
                const char* b = raw.data() + i * w;
                out[i].assign(b, strnlen(b, w));
            }
        }
        return out;
    }

    const std::string& file() const { return m_file; }

private:
    std::string m_file;
};

// Opens the file, telling "not HDF5" and "truncated" apart from other failures.
H5::H5File openForRead(const std::string& path)
{
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        throw IoError(path, "cannot open: " + errnoText());
    if (S_ISDIR(st.st_mode))
        throw InputError(path, "is a directory, not a stats file");
    const htri_t isH5 = H5Fis_hdf5(path.c_str());
    if (isH5 <= 0)
        throw InputError(path, "not an HDF5 file");
    try {
        H5::H5File file(path, H5F_ACC_RDONLY);
        // Only the checksummed layout moewb writes (superblock v2+, object headers v2) is read:
        // libhdf5 parses the unchecksummed v0/v1 structures without bounds checks.
        H5F_info2_t info {};
        if (H5Fget_info2(file.getId(), &info) < 0)
            throw InputError(path, "cannot read the HDF5 superblock");
        if (info.super.version < 2)
            throw InputError(path, "HDF5 superblock version " + std::to_string(info.super.version)
                                       + " has no metadata checksums; moewb stats files use version 2 or later "
                                         "(run moewb calibrate again)");
        return file;
    } catch (const H5::Exception& e) {
        const std::string inner = innermostHdf5Error();
        // HDF5 compares the end-of-file address in the superblock with the real size.
        if (inner.find("truncated file") != std::string::npos) {
            const auto number = [&](const char* key) -> std::string {
                const size_t at = inner.find(key);
                if (at == std::string::npos)
                    return {};
                const size_t b = at + std::strlen(key);
                size_t end = b;
                while (end < inner.size() && std::isdigit((unsigned char)inner[end]))
                    ++end;
                return inner.substr(b, end - b);
            };
            const std::string eof = number("eof = "), stored = number("stored_eof = ");
            if (!eof.empty() && !stored.empty())
                throw InputError(path, "truncated file (" + eof + " of " + stored + " bytes present)");
            throw InputError(path, "truncated file");
        }
        throw InputError(path, "cannot open as HDF5: " + (inner.empty() ? hdf5Message(e) : inner));
    }
}

/// The version comes first: a newer file may lay out everything else differently.
void checkFormatVersion(const Reader& rd, const Loc& root)
{
    if (!root.g.attrExists(h5::kFormatVersion))
        rd.fail("not a moewb stats file (no format_version attribute)");
    const int64_t version = rd.i64(root, h5::kFormatVersion);
    if (version > kStatsFormatVersion)
        rd.fail("format_version " + std::to_string(version) + " is newer than this moewb ("
                + std::to_string(kStatsFormatVersion) + ")");
    if (version == 1)
        rd.fail("format_version 1 is no longer read (its variable-length strings can crash libhdf5 on a damaged "
                "file); run moewb calibrate again to write format_version 2");
    if (version != kStatsFormatVersion)
        rd.fail("format_version " + std::to_string(version) + " is not supported by this moewb ("
                + std::to_string(kStatsFormatVersion) + ")");
}

/// The root attributes: provenance, layer count, hidden size.
void readRootAttributes(const Reader& rd, const Loc& root, CalibStats& s)
{
    StatsProvenance& p = s.provenance;
    p.toolVersion = rd.str(root, h5::kToolVersion);
    p.created = rd.str(root, h5::kCreated);
    p.modelPath = rd.str(root, h5::kModelPath);
    p.architecture = rd.str(root, h5::kArchitecture);
    p.modelType = rd.str(root, h5::kModelType);
    p.dataDescription = rd.str(root, h5::kDataDescription);
    p.computeDtype = rd.str(root, h5::kComputeDtype);
    p.device = rd.str(root, h5::kDevice);
    p.optionsJson = rd.str(root, h5::kOptionsJson);
    p.numSamples = rd.i64(root, h5::kNumSamples);
    p.seqLen = rd.i64(root, h5::kSeqLen);
    p.seed = rd.i64(root, h5::kSeed);
    p.numTokens = rd.i64(root, h5::kNumTokens);
    p.randomWindows = rd.i64(root, h5::kRandomWindows) != 0;
    s.numLayers = rd.i64(root, h5::kNumLayers);
    s.hiddenSize = rd.i64(root, h5::kHiddenSize);
    if (s.numLayers < 0 || s.numLayers > 100000)
        rd.fail("num_layers " + std::to_string(s.numLayers) + " is out of range");
}

/// /data: the calibration files and the domains; returns the domain count.
hsize_t readDataGroup(const Reader& rd, const Loc& root, StatsProvenance& p)
{
    const Loc data = rd.group(root, h5::kDataGroup);
    const Dims fileShape = rd.shapeOf(data, h5::kFilePath);
    if (fileShape.size() != 1)
        rd.fail("dataset /data/file_path has shape " + dimsText(fileShape) + ", expected [F]");
    const hsize_t nf = fileShape[0];
    const auto paths = rd.strings(data, h5::kFilePath, nf);
    const auto formats = rd.strings(data, h5::kFileFormat, nf);
    const auto fdomains = rd.strings(data, h5::kFileDomain, nf);
    const auto algos = rd.strings(data, h5::kFileHashAlgo, nf);
    const auto hashes = rd.strings(data, h5::kFileHash, nf);
    const auto bytes = rd.array<int64_t>(data, h5::kFileBytes, {nf});
    for (size_t i = 0; i < nf; ++i)
        p.dataFiles.push_back({paths[i], formats[i], fdomains[i], bytes[i], algos[i], hashes[i]});
    const Dims domShape = rd.shapeOf(data, h5::kDomains);
    if (domShape.size() != 1)
        rd.fail("dataset /data/domains has shape " + dimsText(domShape) + ", expected [D]");
    const hsize_t nd = domShape[0];
    p.domains = rd.strings(data, h5::kDomains, nd);
    p.domainTokenCounts = rd.array<int64_t>(data, h5::kDomainTokenCounts, {nd});
    return nd;
}

/// /layers/N attributes of every layer (not the routers).
void readLayerHeaders(const Reader& rd, const Loc& layers, CalibStats& s)
{
    s.layers.resize(size_t(s.numLayers));
    for (int64_t i = 0; i < s.numLayers; ++i) {
        const Loc g = rd.group(layers, std::to_string(i));
        LayerStats& l = s.layers[size_t(i)];
        l.layer = rd.i64(g, h5::kLayer);
        if (l.layer != i)
            rd.fail("attribute 'layer' on " + g.path + " is " + std::to_string(l.layer));
        l.isMoe = rd.i64(g, h5::kIsMoe) != 0;
        l.cosine.attn = rd.f64(g, h5::kBlockCosAttn);
        l.cosine.mlp = rd.f64(g, h5::kBlockCosMlp);
        l.cosine.block = rd.f64(g, h5::kBlockCosWhole);
        l.cosine.tokens = rd.i64(g, h5::kBlockCosTokens);
    }
}

/// The router of MoE layer i; its transitions need the next MoE layer's expert count.
void readRouter(const Reader& rd, const Loc& layers, int64_t i, hsize_t nd, CalibStats& s)
{
    const Loc g = rd.group(layers, std::to_string(i));
    RouterStats& r = s.layers[size_t(i)].router;
    r.numExperts = rd.i64(g, h5::kNumExperts);
    if (r.numExperts <= 0 || r.numExperts > (int64_t(1) << 20))
        rd.fail("attribute 'num_experts' on " + g.path + " is " + std::to_string(r.numExperts));
    r.topK = rd.i64(g, h5::kTopK);
    r.tokens = rd.i64(g, h5::kRouterTokens);
    r.routerEntropy = rd.f64(g, h5::kRouterEntropy);
    r.correlationTokens = rd.i64(g, h5::kCorrelationTokens);
    r.correlationMethod = rd.str(g, h5::kCorrelationMethod);
    r.nextMoeLayer = rd.i64(g, h5::kNextMoeLayer);
    int64_t nextE = 0;
    if (r.nextMoeLayer >= 0) {
        if (r.nextMoeLayer <= i || r.nextMoeLayer >= s.numLayers || !s.layers[size_t(r.nextMoeLayer)].isMoe)
            rd.fail("attribute 'next_moe_layer' on " + g.path + " is " + std::to_string(r.nextMoeLayer)
                    + ", not a later MoE layer");
        nextE = rd.i64(rd.group(layers, std::to_string(r.nextMoeLayer)), h5::kNumExperts);
    }
    const hsize_t e = hsize_t(r.numExperts);
    r.expertTokens = rd.array<int64_t>(g, h5::kExpertTokens, {e});
    r.expertTop1 = rd.array<int64_t>(g, h5::kExpertTop1, {e});
    r.expertWeightMass = rd.array<double>(g, h5::kExpertWeightMass, {e});
    r.expertProbMass = rd.array<double>(g, h5::kExpertProbMass, {e});
    r.domainTokens = rd.matrix<int64_t>(g, h5::kDomainTokens, int64_t(nd), r.numExperts);
    r.coactivation = rd.matrix<int64_t>(g, h5::kCoactivation, r.numExperts, r.numExperts);
    // The probe is optional: [0, 0] when it did not run, otherwise [E, E].
    const Dims corr = rd.shapeOf(g, h5::kCorrelation);
    const int64_t ce = corr == Dims{0, 0} ? 0 : r.numExperts;
    r.correlation = rd.matrix<float>(g, h5::kCorrelation, ce, ce);
    r.transitions = rd.matrix<int64_t>(g, h5::kTransitions, r.numExperts, nextE);
    const Dims dead = rd.shapeOf(g, h5::kDeadExperts);
    if (dead.size() != 1)
        rd.fail("dataset " + child(g.path, h5::kDeadExperts) + " has shape " + dimsText(dead) + ", expected [n]");
    r.deadExperts = rd.array<int64_t>(g, h5::kDeadExperts, dead);
}

/// Every row's activation slice [offset, offset + channels) lies inside act_absmax (total values).
void checkActivationSlices(const Reader& rd, const std::vector<std::string>& names, const std::vector<int64_t>& inF,
                           const std::vector<int64_t>& offset, const std::vector<int64_t>& channels, int64_t total)
{
    for (size_t i = 0; i < names.size(); ++i) {
        if (channels[i] != 0 && channels[i] != inF[i])
            rd.fail("/linears row " + std::to_string(i) + " (" + names[i] + "): act_channels "
                    + std::to_string(channels[i]) + " is neither 0 nor in_features " + std::to_string(inF[i]));
        if (offset[i] < 0 || channels[i] < 0 || offset[i] + channels[i] > total)
            rd.fail("/linears row " + std::to_string(i) + " (" + names[i] + "): act_offset "
                    + std::to_string(offset[i]) + " + " + std::to_string(channels[i]) + " is past the end of "
                    + "act_absmax (" + std::to_string(total) + ")");
    }
}

/// The optional Fisher diagonals (absent: s.fisher.tokens stays 0). Each row holds 0 or
/// out_features values, inside the flat array.
void readFisher(const Reader& rd, const Loc& lin, const std::vector<int64_t>& outF, CalibStats& s)
{
    if (!lin.g.attrExists(h5::kFisherTokens))
        return;
    const hsize_t n = outF.size();
    s.fisher.tokens = rd.i64(lin, h5::kFisherTokens);
    s.fisher.labels = rd.str(lin, h5::kFisherLabels);
    s.fisher.seed = rd.i64(lin, h5::kFisherSeed);
    if (s.fisher.tokens <= 0)
        rd.fail("/linears fisher_tokens is " + std::to_string(s.fisher.tokens) + ", expected a positive count");
    const auto offset = rd.array<int64_t>(lin, h5::kFisherOffset, {n});
    const auto channels = rd.array<int64_t>(lin, h5::kFisherChannels, {n});
    const Dims shape = rd.shapeOf(lin, h5::kFisher);
    if (shape.size() != 1)
        rd.fail("dataset /linears/fisher has shape " + dimsText(shape) + ", expected [C]");
    const int64_t total = int64_t(shape[0]);
    const std::vector<float> all = rd.array<float>(lin, h5::kFisher, shape);
    for (size_t i = 0; i < n; ++i) {
        LinearStats& r = s.linears[i];
        if ((channels[i] != 0 && channels[i] != outF[i]) || offset[i] < 0 || channels[i] < 0
            || offset[i] + channels[i] > total)
            rd.fail("/linears row " + std::to_string(i) + " (" + r.name + "): fisher slice " + std::to_string(offset[i])
                    + " + " + std::to_string(channels[i]) + " is not 0 or out_features values inside fisher ("
                    + std::to_string(total) + ")");
        r.fisher.assign(all.begin() + offset[i], all.begin() + offset[i] + channels[i]);
    }
}

/// /linears: one row per linear, its activation statistics split out of the bulk arrays.
void readLinears(const Reader& rd, const Loc& root, CalibStats& s)
{
    const Loc lin = rd.group(root, h5::kLinearsGroup);
    s.outlier.metric = rd.str(lin, h5::kOutlierMetric);
    s.outlier.computeDtype = rd.str(lin, h5::kOutlierDtype);
    s.outlier.eps = rd.f64(lin, h5::kOutlierEps);
    const Dims nameShape = rd.shapeOf(lin, h5::kName);
    if (nameShape.size() != 1)
        rd.fail("dataset /linears/name has shape " + dimsText(nameShape) + ", expected [N]");
    const hsize_t n = nameShape[0];
    const auto names = rd.strings(lin, h5::kName, n);
    const auto roles = rd.strings(lin, h5::kRole, n);
    const auto layer = rd.array<int64_t>(lin, h5::kLayer, {n});
    const auto expert = rd.array<int64_t>(lin, h5::kExpert, {n});
    const auto inF = rd.array<int64_t>(lin, h5::kInFeatures, {n});
    const auto outF = rd.array<int64_t>(lin, h5::kOutFeatures, {n});
    const auto tokens = rd.array<int64_t>(lin, h5::kTokens, {n});
    const auto score = rd.array<float>(lin, h5::kOutlierScore, {n});
    const auto scoreCol = rd.array<int64_t>(lin, h5::kOutlierColumn, {n});
    const auto offset = rd.array<int64_t>(lin, h5::kActOffset, {n});
    const auto channels = rd.array<int64_t>(lin, h5::kActChannels, {n});
    const Dims actShape = rd.shapeOf(lin, h5::kActAbsMax);
    if (actShape.size() != 1)
        rd.fail("dataset /linears/act_absmax has shape " + dimsText(actShape) + ", expected [C]");
    const int64_t total = int64_t(actShape[0]);
    checkActivationSlices(rd, names, inF, offset, channels, total);
    s.linears.resize(n);
    for (size_t i = 0; i < n; ++i) {
        LinearStats& r = s.linears[i];
        r.name = names[i];
        r.role = roles[i];
        r.layer = layer[i];
        r.expert = expert[i];
        r.inFeatures = inF[i];
        r.outFeatures = outF[i];
        r.tokens = tokens[i];
        r.outlierScore = score[i];
        r.outlierColumn = scoreCol[i];
    }
    // One bulk read per array, then split: thousands of small hyperslab reads are far slower.
    const auto splitInto = [&](const char* name, std::vector<float> LinearStats::*field) {
        const std::vector<float> all = rd.array<float>(lin, name, {hsize_t(total)});
        for (size_t i = 0; i < n; ++i)
            (s.linears[i].*field).assign(all.begin() + offset[i], all.begin() + offset[i] + channels[i]);
    };
    splitInto(h5::kActAbsMax, &LinearStats::actAbsMax);
    splitInto(h5::kActSqMean, &LinearStats::actSqMean);
    readFisher(rd, lin, outF, s);
}

CalibStats readAll(const Reader& rd, H5::H5File& file, const ProgressFn& progress)
{
    CalibStats s;
    const Loc root{file.openGroup("/"), "/"};
    checkFormatVersion(rd, root);
    readRootAttributes(rd, root, s);
    const hsize_t nd = readDataGroup(rd, root, s.provenance);
    const Loc layers = rd.group(root, h5::kLayersGroup);
    readLayerHeaders(rd, layers, s);
    int64_t moeLayers = 0;
    for (const LayerStats& l : s.layers)
        moeLayers += l.isMoe ? 1 : 0;
    const int64_t steps = moeLayers + 2;
    int64_t step = 0;
    report(progress, "read", ++step, steps, "header");
    // Transitions need the next layer's expert count, so routers are read after all headers.
    for (int64_t i = 0; i < s.numLayers; ++i) {
        if (!s.layers[size_t(i)].isMoe)
            continue;
        report(progress, "read", ++step, steps, "layer " + std::to_string(i) + "/" + std::to_string(s.numLayers));
        readRouter(rd, layers, i, nd, s);
    }
    readLinears(rd, root, s);
    report(progress, "read", steps, steps, std::to_string(s.linears.size()) + " linears");
    return s;
}

} // namespace

void validateStats(const CalibStats& s)
{
    const StatsProvenance& p = s.provenance;
    checkSize(p.domainTokenCounts, p.domains.size(), "domain_token_counts");
    if (int64_t(s.layers.size()) != s.numLayers)
        invalid("has " + std::to_string(s.layers.size()) + " layers, numLayers is " + std::to_string(s.numLayers));
    const int64_t nd = int64_t(p.domains.size());
    for (size_t i = 0; i < s.layers.size(); ++i) {
        const LayerStats& l = s.layers[i];
        const std::string w = "layer " + std::to_string(i);
        if (l.layer != int64_t(i))
            invalid(w + " is numbered " + std::to_string(l.layer));
        if (!l.isMoe)
            continue;
        const RouterStats& r = l.router;
        const int64_t e = r.numExperts;
        if (e <= 0)
            invalid(w + " is MoE with " + std::to_string(e) + " experts");
        checkSize(r.expertTokens, size_t(e), w + " expert_tokens");
        checkSize(r.expertTop1, size_t(e), w + " expert_top1");
        checkSize(r.expertWeightMass, size_t(e), w + " expert_weight_mass");
        checkSize(r.expertProbMass, size_t(e), w + " expert_prob_mass");
        checkMatrix(r.domainTokens, nd, e, w + " domain_tokens");
        checkMatrix(r.coactivation, e, e, w + " coactivation");
        if (r.correlation.rows == 0 && r.correlation.cols == 0)
            checkSize(r.correlation.data, 0, w + " correlation");
        else
            checkMatrix(r.correlation, e, e, w + " correlation");
        int64_t nextE = 0;
        if (r.nextMoeLayer >= 0) {
            if (r.nextMoeLayer <= int64_t(i) || r.nextMoeLayer >= s.numLayers
                || !s.layers[size_t(r.nextMoeLayer)].isMoe)
                invalid(w + " next_moe_layer " + std::to_string(r.nextMoeLayer) + " is not a later MoE layer");
            nextE = s.layers[size_t(r.nextMoeLayer)].router.numExperts;
        }
        checkMatrix(r.transitions, e, nextE, w + " transitions");
        for (size_t k = 0; k < r.deadExperts.size(); ++k)
            if (r.deadExperts[k] < 0 || r.deadExperts[k] >= e || (k > 0 && r.deadExperts[k] <= r.deadExperts[k - 1]))
                invalid(w + " dead_experts must be ascending expert indices below " + std::to_string(e));
    }
    for (const LinearStats& r : s.linears) {
        const size_t c = r.actAbsMax.size();
        if (c != 0 && int64_t(c) != r.inFeatures)
            invalid("linear " + r.name + " act_absmax has " + std::to_string(c) + " values, in_features is "
                    + std::to_string(r.inFeatures));
        checkSize(r.actSqMean, c, "linear " + r.name + " act_sqmean");
        if (!r.fisher.empty() && int64_t(r.fisher.size()) != r.outFeatures)
            invalid("linear " + r.name + " fisher has " + std::to_string(r.fisher.size()) + " values, out_features is "
                    + std::to_string(r.outFeatures));
        if (!r.fisher.empty() && !s.hasFisher())
            invalid("linear " + r.name + " has a Fisher diagonal but fisher.tokens is 0");
    }
}

void writeStats(const CalibStats& stats, const std::string& path, const ProgressFn& progress)
{
    validateStats(stats);
    silenceHdf5();
    removeStaleTemporaries(path);
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    // The HDF5 file is built in memory (core driver, no backing store) and written to disk by
    // writeImage below: libhdf5 never sees an I/O error. With a file on disk, a full disk in the
    // middle of H5Dwrite left libhdf5 with half-closed objects that crashed it at exit; now a write
    // error is one IoError with the OS's reason and the temporary file is removed.
    std::vector<char> image;
    try {
        const int64_t steps = 1 + stats.numLayers + linearSlabs(stats);
        int64_t step = 0;
        H5::FileCreatPropList fcpl;
        H5Pset_obj_track_times(fcpl.getId(), false); // the root group; Note [Deterministic files]
        // HDF5 1.10 file format (superblock v3, object header v2): every metadata block carries a
        // checksum that libhdf5 verifies on read, so a damaged header is an error, not a parse of
        // garbage (the older layout crashed libhdf5 under the fuzzer, docs/robustness.md).
        H5::FileAccPropList fapl;
        H5Pset_libver_bounds(fapl.getId(), H5F_LIBVER_V110, H5F_LIBVER_V110);
        H5Pset_fapl_core(fapl.getId(), size_t(4) << 20, /*backing_store=*/false);
        H5::H5File file(tmp, H5F_ACC_TRUNC, fcpl, fapl);
        writeRoot(file, stats);
        report(progress, "write stats", ++step, steps, "provenance");
        {
            H5::Group layers = makeGroup(file, h5::kLayersGroup);
            for (const LayerStats& l : stats.layers) {
                writeLayer(layers, l);
                report(progress, "write stats", ++step, steps, "layer " + std::to_string(l.layer));
            }
        }
        writeLinears(file, stats, progress, step, steps);
        file.flush(H5F_SCOPE_GLOBAL);
        const ssize_t n = H5Fget_file_image(file.getId(), nullptr, 0);
        if (n <= 0)
            throw IoError(path, "HDF5 could not produce the file image");
        image.resize(size_t(n));
        if (H5Fget_file_image(file.getId(), image.data(), size_t(n)) != n)
            throw IoError(path, "HDF5 could not produce the file image");
        file.close();
        fixSuperblockChecksum(image, path);
    } catch (const H5::Exception& e) {
        throw IoError(path, "writing failed: " + hdf5Message(e));
    }
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        throw IoError(path, "cannot create " + tmp + ": " + errnoText());
    size_t done = 0;
    while (done < image.size()) {
        const ssize_t w = ::write(fd, image.data() + done, image.size() - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            const std::string why = w < 0 ? errnoText() : std::string("no progress");
            ::close(fd);
            std::remove(tmp.c_str());
            throw IoError(path, "cannot write " + tmp + ": " + why);
        }
        done += size_t(w);
    }
    // Durable before the rename publishes it.
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        const std::string why = errnoText();
        std::remove(tmp.c_str());
        throw IoError(path, "cannot write " + tmp + ": " + why);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string why = errnoText();
        std::remove(tmp.c_str());
        throw IoError(path, "cannot rename " + tmp + " to it: " + why);
    }
}

CalibStats readStats(const std::string& path, const ProgressFn& progress)
{
    silenceHdf5();
    Reader rd(path);
    try {
        H5::H5File file = openForRead(path);
        CalibStats s = readAll(rd, file, progress);
        try {
            validateStats(s);
        } catch (const Error& e) {
            rd.fail(std::string("inconsistent contents: ") + e.what());
        }
        return s;
    } catch (const H5::Exception& e) {
        throw InputError(path, "cannot read: " + hdf5Message(e));
    }
}

} // namespace moewb
