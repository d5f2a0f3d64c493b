// SPDX-License-Identifier: MIT
#include "moewb/eval/kld.h"

#include "eval/scored_logits.h"
#include "moewb/core/error.h"
#include "moewb/core/text_file.h"
#include "moewb/hfconfig/hf_config.h"
#include "moewb/model/model_source.h"
#include "moewb/tokenizer/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>

#include <fcntl.h>
#include <unistd.h>

namespace moewb {

namespace {

/// An unlinked temporary file: gone when closed, even after a crash.
class ScratchFile {
public:
    explicit ScratchFile(const std::string& dir)
    {
        static std::atomic<int> counter{0};
        const std::filesystem::path base = dir.empty() ? std::filesystem::temp_directory_path() : std::filesystem::path(dir);
        m_path = (base / ("moewb-kldref-" + std::to_string(::getpid()) + "-" + std::to_string(counter++))).string();
        m_fd = ::open(m_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (m_fd < 0)
            throw IoError(m_path, std::string("cannot create the reference cache: ") + std::strerror(errno));
        ::unlink(m_path.c_str());
    }
    ~ScratchFile() { ::close(m_fd); }
    ScratchFile(const ScratchFile&) = delete;
    ScratchFile& operator=(const ScratchFile&) = delete;

    void write(const void* data, size_t bytes, int64_t offset) const
    {
        const char* p = static_cast<const char*>(data);
        while (bytes > 0) {
            const ssize_t n = ::pwrite(m_fd, p, bytes, off_t(offset));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                throw IoError(m_path, std::string("cannot write the reference cache: ") + std::strerror(errno));
            p += n, bytes -= size_t(n), offset += n;
        }
    }
    void read(void* data, size_t bytes, int64_t offset) const
    {
        char* p = static_cast<char*>(data);
        while (bytes > 0) {
            const ssize_t n = ::pread(m_fd, p, bytes, off_t(offset));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                throw IoError(m_path, std::string("cannot read the reference cache: ") + std::strerror(errno));
            p += n, bytes -= size_t(n), offset += n;
        }
    }

private:
    std::string m_path;
    int m_fd = -1;
};

} // namespace

struct KldReference::Impl {
    std::string modelDir;
    std::vector<int32_t> ids;
    PerplexityOptions opt;        ///< with the resolved ctx and stride: the evaluated model uses the same windows
    PerplexityResult ppl;
    std::vector<PplWindow> windows;
    std::vector<int64_t> firstRow; ///< first cached row of each window
    int64_t vocab = -1;
    std::unique_ptr<ScratchFile> file;

    int64_t byteOffset(size_t window) const { return firstRow[window] * vocab * int64_t(sizeof(float)); }

    /// Rows [first, first + count) of window i's cached log-probabilities: [count, vocab] float32.
    at::Tensor read(size_t i, int64_t first, int64_t count) const
    {
        at::Tensor t = at::empty({count, vocab}, at::kFloat);
        file->read(t.data_ptr<float>(), size_t(t.numel()) * sizeof(float),
                   byteOffset(i) + first * vocab * int64_t(sizeof(float)));
        return t;
    }
};

KldReference::KldReference(const std::string& refModelDir, const std::vector<int32_t>& ids,
                           const PerplexityOptions& opt, const ProgressFn& progress, const std::string& tmpDir)
    : m(std::make_unique<Impl>())
{
    m->modelDir = refModelDir;
    m->ids = ids;
    m->opt = opt;
    m->opt.ctx = contextLength(loadModelConfig(refModelDir), opt.ctx);
    m->opt.stride = opt.stride > 0 ? opt.stride : m->opt.ctx;
    m->windows = windowsFor(int64_t(ids.size()), m->opt);
    int64_t row = 0;
    for (const PplWindow& w : m->windows) {
        m->firstRow.push_back(row);
        row += std::max<int64_t>(0, w.end - w.firstScored);
    }
    m->file = std::make_unique<ScratchFile>(tmpDir);
    std::mutex mu;
    m->ppl = runScored(
        refModelDir, ids, m->opt,
        [&](size_t i, const PplWindow&, const at::Tensor& logp, const at::Tensor&) {
            const at::Tensor rows = logp.contiguous();
            std::lock_guard<std::mutex> lock(mu);
            if (m->vocab < 0)
                m->vocab = rows.size(1);
            m->file->write(rows.data_ptr<float>(), size_t(rows.numel()) * sizeof(float), m->byteOffset(i));
        },
        progress);
}

KldReference::~KldReference() = default;
const std::string& KldReference::modelDir() const { return m->modelDir; }
const std::vector<int32_t>& KldReference::ids() const { return m->ids; }
const PerplexityResult& KldReference::perplexity() const { return m->ppl; }
int64_t KldReference::vocab() const { return m->vocab; }

double percentileLinear(std::vector<double> v, double q)
{
    if (v.empty())
        return 0.0;
    std::sort(v.begin(), v.end());
    const double rank = q * double(v.size() - 1);
    const size_t lo = size_t(std::floor(rank));
    const size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (rank - double(lo)) * (v[hi] - v[lo]);
}

KldResult evaluateKld(const std::string& modelDir, const KldReference& ref, const PerplexityOptions& opt,
                      const ProgressFn& progress)
{
    const KldReference::Impl& r = ref.impl();
    PerplexityOptions po = opt;
    po.ctx = r.opt.ctx;
    po.stride = r.opt.stride;
    KldResult out;
    out.windowKld.assign(r.windows.size(), 0.0);
    out.windowTokens.assign(r.windows.size(), 0);
    out.windowSameTop.assign(r.windows.size(), 0);
    std::vector<std::vector<double>> perToken(r.windows.size());
    out.perplexity = runScored(
        modelDir, r.ids, po,
        [&](size_t i, const PplWindow&, const at::Tensor& logp, const at::Tensor&) {
            MOEWB_CHECK(logp.size(1) == r.vocab, modelDir, "the model predicts ", logp.size(1),
                        " tokens per position, the reference ", r.modelDir, " ", r.vocab, ": not comparable");
            // Both sides are float32 (the cache's precision), so a model compared with itself gives
            // exactly 0 and the same top token everywhere. A block of rows at a time in float64:
            // the temporaries stay small next to the window's logits.
            const int64_t count = logp.size(0);
            perToken[i].resize(size_t(count));
            for (int64_t row = 0; row < count; row += kScoredRowBlock) {
                const int64_t n = std::min(kScoredRowBlock, count - row);
                const at::Tensor refLogp = r.read(i, row, n).to(at::kDouble);
                const at::Tensor modelLogp = logp.slice(0, row, row + n).to(at::kDouble);
                // KL(P_ref || P_model) = sum_v p_ref(v) (log p_ref(v) - log p_model(v)), per position.
                const at::Tensor kl = (refLogp.exp() * (refLogp - modelLogp)).sum(-1).contiguous();
                const at::Tensor same = refLogp.argmax(-1).eq(modelLogp.argmax(-1));
                std::copy_n(kl.data_ptr<double>(), n, perToken[i].begin() + row);
                out.windowKld[i] += kl.sum().item<double>();
                out.windowSameTop[i] += same.sum().item<int64_t>();
            }
            out.windowTokens[i] = count;
        },
        progress);
    std::vector<double> all;
    int64_t same = 0;
    double sum = 0.0;
    for (size_t i = 0; i < r.windows.size(); ++i) {
        all.insert(all.end(), perToken[i].begin(), perToken[i].end());
        sum += out.windowKld[i];
        same += out.windowSameTop[i];
    }
    out.tokens = int64_t(all.size());
    out.meanKld = out.tokens ? sum / double(out.tokens) : 0.0;
    out.sameTop = out.tokens ? double(same) / double(out.tokens) : 0.0;
    out.p99Kld = percentileLinear(std::move(all), 0.99);
    return out;
}

namespace {

std::vector<int32_t> tokenizeFile(const std::string& modelDir, const std::string& tokenizer, const std::string& textFile,
                                  const ProgressFn& progress)
{
    const std::string text = readFileBytes(textFile);
    report(progress, "tokenize", 0, 1);
    const std::vector<int32_t> ids = loadModelTokenizer(modelDir, tokenizer)->encode(text, /*addSpecialTokens=*/true);
    report(progress, "tokenize", 1, 1);
    return ids;
}

} // namespace

std::unique_ptr<KldReference> kldReferenceForFile(const std::string& refModelDir, const std::string& textFile,
                                                  const PerplexityOptions& opt, const ProgressFn& progress,
                                                  const std::string& tmpDir)
{
    loadModelConfig(refModelDir);
    return std::make_unique<KldReference>(refModelDir, tokenizeFile(refModelDir, opt.tokenizer, textFile, progress), opt, progress,
                                          tmpDir);
}

KldResult evaluateKldFile(const std::string& modelDir, const KldReference& ref, const std::string& textFile,
                          const PerplexityOptions& opt, const ProgressFn& progress)
{
    loadModelConfig(modelDir);
    const std::vector<int32_t> ids = tokenizeFile(modelDir, opt.tokenizer, textFile, progress);
    if (ids != ref.ids())
        throw InputError(modelDir, "its tokenizer splits " + textFile + " differently from the reference model "
                                       + ref.modelDir() + "'s: KL divergence needs the same tokenizer");
    return evaluateKld(modelDir, ref, opt, progress);
}

} // namespace moewb
