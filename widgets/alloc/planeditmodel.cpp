// SPDX-License-Identifier: MIT
#include "alloc/planeditmodel.h"

#include "moewb/plan/plan.h"
#include "moewb/plan/prune_spec.h"
#include "moewb/core/error.h"

#include <QFileInfo>
#include <QUndoCommand>
#include <QUndoStack>

#include <algorithm>
#include <regex>
#include <set>

namespace moewb {

LinearKind linearKind(LinearRole role)
{
    switch (role) {
    case LinearRole::Q:
    case LinearRole::K:
    case LinearRole::V:
    case LinearRole::O:
        return LinearKind::Attention;
    case LinearRole::ExpertGate:
    case LinearRole::ExpertUp:
    case LinearRole::ExpertDown:
    case LinearRole::Router:
        return LinearKind::RoutedExpert;
    case LinearRole::SharedGateProj:
    case LinearRole::SharedUp:
    case LinearRole::SharedDown:
    case LinearRole::SharedGate:
        return LinearKind::SharedExpert;
    case LinearRole::DenseGate:
    case LinearRole::DenseUp:
    case LinearRole::DenseDown:
        return LinearKind::DenseMlp;
    }
    return LinearKind::DenseMlp;
}

const char* linearKindName(LinearKind kind)
{
    switch (kind) {
    case LinearKind::Attention:
        return "attention";
    case LinearKind::RoutedExpert:
        return "routed experts";
    case LinearKind::SharedExpert:
        return "shared experts";
    case LinearKind::DenseMlp:
        return "dense MLP";
    case LinearKind::Count:
        break;
    }
    return "?";
}

namespace {

/// As expandPlan does last: an N:M pattern fixes a non-zero sparsity to (M − N)/M.
void normalizeSparsity(PlanEntry& e)
{
    if (e.sparsity > 0)
        e.sparsity = patternSparsity(e.pattern, e.sparsity);
}

/// rawSparsity: the sparsity the defaults and rules give before the pattern fixes it (an override
/// may still change the pattern).
void resetToRules(PlanEntry& e, const PlanEntry& rule, double rawSparsity)
{
    static_cast<LinearSettings&>(e) = rule;
    e.sparsity = rawSparsity;
}

bool isMlpPart(LinearRole r)
{
    return r != LinearRole::Q && r != LinearRole::K && r != LinearRole::V && r != LinearRole::O;
}

} // namespace

// --------------------------------------------------------------------------------- commands
/// Sets or removes the overrides of some linears; the fast path (only those entries change).
class OverridesCommand : public QUndoCommand {
public:
    OverridesCommand(PlanEditModel* m, PlanEditModel::OverrideDelta before, PlanEditModel::OverrideDelta after,
                     const QString& text)
        : QUndoCommand(text)
        , m_model(m)
        , m_before(std::move(before))
        , m_after(std::move(after))
    {
    }
    void redo() override { m_model->applyOverrides(m_after); }
    void undo() override { m_model->applyOverrides(m_before); }

private:
    PlanEditModel* m_model;
    PlanEditModel::OverrideDelta m_before, m_after;
};

/// Replaces the whole plan (rules, defaults, drops, a loaded or solved plan).
class PlanCommand : public QUndoCommand {
public:
    PlanCommand(PlanEditModel* m, std::shared_ptr<const Plan> before, std::shared_ptr<const Plan> after,
                const QString& text, int mergeKey)
        : QUndoCommand(text)
        , m_model(m)
        , m_before(std::move(before))
        , m_after(std::move(after))
        , m_mergeKey(mergeKey)
    {
    }
    void redo() override { m_model->applyPlan(m_after); }
    void undo() override { m_model->applyPlan(m_before); }
    int id() const override { return m_mergeKey ? 0x504c0000 + (m_mergeKey & 0xffff) : -1; }
    bool mergeWith(const QUndoCommand* other) override
    {
        auto* o = dynamic_cast<const PlanCommand*>(other);
        if (!o || o->m_mergeKey != m_mergeKey)
            return false;
        m_after = o->m_after;
        setText(o->text());
        return true;
    }

private:
    PlanEditModel* m_model;
    std::shared_ptr<const Plan> m_before, m_after; // shared with the model: no copies of big plans
    int m_mergeKey;
};

// ------------------------------------------------------------------------------------ model
PlanEditModel::PlanEditModel(QObject* parent)
    : QObject(parent)
    , m_plan(std::make_shared<Plan>()) // non-const objects: mutablePlan() may write through a const_cast
    , m_undo(new QUndoStack(this))
{
}

PlanEditModel::~PlanEditModel() = default;

void PlanEditModel::setModelConfig(std::shared_ptr<const ModelConfig> cfg)
{
    m_undo->clear();
    m_cfg = std::move(cfg);
    m_plan = std::make_shared<Plan>();
    m_planPath.clear();
    m_index.clear();
    m_breakdown = PlanBreakdown{};
    rebuildRuleEntries();
    m_index.reserve(m_ruleEntries.size());
    for (size_t i = 0; i < m_ruleEntries.size(); ++i)
        m_index.emplace(m_ruleEntries[i].name, int(i));
    m_breakdown.fixedBytes = m_cfg ? fixedModelBytes(*m_cfg) : 0;
    rebuildEntries();
    emit modelConfigChanged();
    emit planChanged();
    emit entriesChanged({}, true);
}

void PlanEditModel::requireModel() const
{
    if (!m_cfg)
        throw InputError("plan editor", "no model is open");
}

PlanSize PlanEditModel::size() const
{
    PlanSize s;
    double bitParams = 0;
    for (const KindTotals& k : m_breakdown.kinds) {
        s.linearBytes += k.bytes;
        s.quantParams += k.params;
        s.nonzeroParams += k.nonzeroParams;
        bitParams += double(k.bitParams);
    }
    s.density = s.quantParams ? double(s.nonzeroParams) / double(s.quantParams) : 1.0;
    if (!m_cfg)
        return s;
    s.modelBytes = s.linearBytes + m_breakdown.fixedBytes;
    s.averageBits = s.quantParams ? bitParams / double(s.quantParams) : 0.0;
    s.effectiveBits = s.quantParams ? 8.0 * double(s.linearBytes) / double(s.quantParams) : 0.0;
    return s;
}

int PlanEditModel::entryIndex(const std::string& name) const
{
    auto it = m_index.find(name);
    return it == m_index.end() ? -1 : it->second;
}

// ---------------------------------------------------------------------------------- whole plan
void PlanEditModel::setPlan(const Plan& plan, const QString& undoText)
{
    pushPlan(plan, undoText, 0);
}

void PlanEditModel::setPlanMerged(const Plan& plan, const QString& undoText, int mergeKey)
{
    pushPlan(plan, undoText, mergeKey);
}

void PlanEditModel::setPlanMerged(Plan&& plan, const QString& undoText, int mergeKey)
{
    pushPlan(std::move(plan), undoText, mergeKey);
}

void PlanEditModel::pushPlan(Plan after, const QString& text, int mergeKey)
{
    requireModel();
    // validatePlan lists the model's linears (45k names on DeepSeek-V3): only on the error path.
    bool known = true;
    for (const auto& [name, s] : after.overrides)
        known = known && entryIndex(name) >= 0;
    for (const DroppedExpert& d : after.droppedExperts)
        known = known && m_cfg->isMoeLayer(d.layer) && d.expert >= 0 && d.expert < m_cfg->numExperts;
    for (int64_t l : after.droppedLayers)
        known = known && m_cfg->isMoeLayer(l);
    for (int64_t b : after.droppedBlocks)
        known = known && b >= 0 && b < m_cfg->numLayers;
    if (!known)
        validatePlan(after, *m_cfg, "plan");
    const std::string defaultsProblem = settingsProblem(after.defaults);
    if (!defaultsProblem.empty())
        throw InputError("plan: $.defaults", defaultsProblem);
    for (size_t i = 0; i < after.rules.size(); ++i) {
        try {
            checkRule(after.rules[i]);
        } catch (const Error& e) {
            throw InputError("plan: $.rules[" + std::to_string(i) + "]: " + e.what());
        }
    }
    for (const auto& [name, s] : after.overrides) {
        const std::string problem = settingsProblem(s);
        if (!problem.empty()) // the path (a string per override) only when needed
            throw InputError("plan: $.overrides[\"" + name + "\"]", problem);
    }
    if (after == *m_plan)
        return;
    m_undo->push(new PlanCommand(this, m_plan, std::make_shared<Plan>(std::move(after)), text, mergeKey));
}

void PlanEditModel::loadPlanFile(const QString& path)
{
    requireModel();
    const std::string p = path.toStdString();
    Plan plan = loadPlan(p);
    validatePlan(plan, *m_cfg, p);
    pushPlan(std::move(plan), tr("Load plan %1").arg(QFileInfo(path).fileName()), 0);
    m_planPath = path;
}

void PlanEditModel::savePlanFile(const QString& path)
{
    requireModel();
    savePlan(*m_plan, path.toStdString());
    m_planPath = path;
    m_undo->setClean();
}

// ------------------------------------------------------------------------------- expansion
void PlanEditModel::rebuildRuleEntries()
{
    m_ruleEntries.clear();
    if (!m_cfg)
        return;
    Plan p;
    p.defaults = m_plan->defaults;
    p.rules = m_plan->rules;
    m_ruleEntries = expandPlan(p, *m_cfg);
    // The sparsities before N:M patterns fix them (an override may change the pattern): the same
    // expansion with every pattern unstructured. Only needed when some pattern is set.
    m_ruleRawSparsity.resize(m_ruleEntries.size());
    bool patterns = p.defaults.pattern != "unstructured";
    for (PlanRule& r : p.rules) {
        patterns = patterns || (r.set.pattern && *r.set.pattern != "unstructured");
        r.set.pattern.reset();
    }
    p.defaults.pattern = "unstructured";
    if (patterns) {
        const std::vector<PlanEntry> raw = expandPlan(p, *m_cfg);
        for (size_t i = 0; i < raw.size(); ++i)
            m_ruleRawSparsity[i] = raw[i].sparsity;
    } else {
        for (size_t i = 0; i < m_ruleEntries.size(); ++i)
            m_ruleRawSparsity[i] = m_ruleEntries[i].sparsity;
    }
}

bool PlanEditModel::entryDropped(const PlanEntry& e) const
{
    auto has = [](const std::vector<int64_t>& v, int64_t x) { return std::find(v.begin(), v.end(), x) != v.end(); };
    if (has(m_plan->droppedBlocks, e.layer))
        return true;
    if (isMlpPart(e.role) && has(m_plan->droppedLayers, e.layer) && m_cfg->isMoeLayer(e.layer))
        return true;
    return e.expert >= 0
        && std::find(m_plan->droppedExperts.begin(), m_plan->droppedExperts.end(), DroppedExpert{e.layer, e.expert})
        != m_plan->droppedExperts.end();
}

void PlanEditModel::rebuildEntries()
{
    if (m_entries.size() != m_ruleEntries.size()) {
        m_entries = m_ruleEntries;
    } else {
        for (size_t i = 0; i < m_entries.size(); ++i) // same layout: no name copies
            resetToRules(m_entries[i], m_ruleEntries[i], m_ruleRawSparsity[i]), normalizeSparsity(m_entries[i]);
    }
    for (const auto& [name, s] : m_plan->overrides) {
        const int i = entryIndex(name);
        if (i >= 0) {
            resetToRules(m_entries[size_t(i)], m_ruleEntries[size_t(i)], m_ruleRawSparsity[size_t(i)]);
            applyQuantSettings(m_entries[size_t(i)], s, name);
            normalizeSparsity(m_entries[size_t(i)]);
        }
    }
    std::set<std::pair<int64_t, int64_t>> dropE;
    for (const DroppedExpert& d : m_plan->droppedExperts)
        dropE.insert({d.layer, d.expert});
    const std::set<int64_t> dropL(m_plan->droppedLayers.begin(), m_plan->droppedLayers.end());
    const std::set<int64_t> dropB(m_plan->droppedBlocks.begin(), m_plan->droppedBlocks.end());
    for (PlanEntry& e : m_entries)
        e.dropped = dropB.count(e.layer) || (isMlpPart(e.role) && dropL.count(e.layer) && m_cfg->isMoeLayer(e.layer))
            || (e.expert >= 0 && dropE.count({e.layer, e.expert}));
    recomputeTotals();
}

void PlanEditModel::addTotals(const PlanEntry& e, int sign)
{
    if (e.dropped)
        return;
    KindTotals& k = m_breakdown.kinds[int(linearKind(e.role))];
    const int64_t numel = e.inFeatures * e.outFeatures;
    k.bytes += sign * gptqLinearBytes(e.inFeatures, e.outFeatures, e.bits, e.groupSize);
    k.params += sign * numel;
    k.bitParams += sign * e.bits * numel;
    k.nonzeroParams += sign * (numel - (e.sparsity > 0 ? e.outFeatures * prunedPerRow(e.pruneSpec(), e.inFeatures) : 0));
    k.linears += sign;
}

void PlanEditModel::recomputeTotals()
{
    for (KindTotals& k : m_breakdown.kinds)
        k = KindTotals{};
    for (const PlanEntry& e : m_entries)
        addTotals(e, +1);
}

void PlanEditModel::applyOverrides(const OverrideDelta& delta)
{
    QVector<int> changed;
    changed.reserve(int(delta.size()));
    for (const auto& [name, s] : delta) {
        const int i = entryIndex(name);
        if (i < 0)
            continue;
        if (s)
            mutablePlan().overrides[name] = *s;
        else
            mutablePlan().overrides.erase(name);
        PlanEntry& e = m_entries[size_t(i)];
        addTotals(e, -1);
        resetToRules(e, m_ruleEntries[size_t(i)], m_ruleRawSparsity[size_t(i)]);
        if (s)
            applyQuantSettings(e, *s, name);
        normalizeSparsity(e);
        addTotals(e, +1);
        changed.push_back(i);
    }
    emit planChanged();
    emit entriesChanged(changed, false);
}

Plan& PlanEditModel::mutablePlan()
{
    // copy on write: undo commands may hold the current plan
    if (m_plan.use_count() > 1)
        m_plan = std::make_shared<Plan>(*m_plan);
    return const_cast<Plan&>(*m_plan);
}

void PlanEditModel::applyPlan(const std::shared_ptr<const Plan>& plan)
{
    const bool rulesChanged = !(plan->rules == m_plan->rules) || !(plan->defaults == m_plan->defaults);
    m_plan = plan;
    if (rulesChanged)
        rebuildRuleEntries();
    rebuildEntries();
    emit planChanged();
    emit entriesChanged({}, true);
}

// ---------------------------------------------------------------------------------- edits
void PlanEditModel::pushOverrides(OverrideDelta before, OverrideDelta after, const QString& text)
{
    if (after.empty())
        return;
    m_undo->push(new OverridesCommand(this, std::move(before), std::move(after), text));
}

void PlanEditModel::setSettings(const std::vector<int>& entries, const QuantSettings& set, const QString& undoText)
{
    requireModel();
    checkSettings(set, "plan editor");
    std::vector<int> idx(entries);
    std::sort(idx.begin(), idx.end());
    idx.erase(std::unique(idx.begin(), idx.end()), idx.end());
    OverrideDelta before, after;
    for (int i : idx) {
        if (i < 0 || size_t(i) >= m_entries.size())
            continue;
        const std::string& name = m_entries[size_t(i)].name;
        auto it = m_plan->overrides.find(name);
        std::optional<QuantSettings> old;
        if (it != m_plan->overrides.end())
            old = it->second;
        QuantSettings now = old.value_or(QuantSettings{});
        overlaySettings(now, set);
        if (old && *old == now)
            continue;
        before.emplace_back(name, old);
        after.emplace_back(name, now);
    }
    pushOverrides(std::move(before), std::move(after), undoText);
}

static QString countText(size_t n)
{
    return n == 1 ? QObject::tr("1 linear") : QObject::tr("%1 linears").arg(n);
}

void PlanEditModel::setPruning(const std::vector<int>& entries, const std::string& textIn)
{
    std::string text = textIn;
    text.erase(0, text.find_first_not_of(" \t"));
    text.erase(text.find_last_not_of(" \t") + 1);
    QuantSettings s;
    if (text.find(':') != std::string::npos) {
        const PrunePattern p = parsePrunePattern(text, "pruning");
        s.pattern = prunePatternName(p);
        s.sparsity = patternSparsity(p, 0.5);
    } else {
        double v = 0;
        bool percent = !text.empty() && text.back() == '%';
        if (percent)
            text.pop_back();
        try {
            size_t used = 0;
            v = std::stod(text, &used);
            if (used != text.size())
                throw std::invalid_argument(text);
        } catch (const std::exception&) {
            throw InputError("pruning", "'" + textIn + "' is not a sparsity (0.5, 50%) or an N:M pattern (2:4)");
        }
        if (percent)
            v /= 100.0;
        checkSparsity(v, "pruning");
        s.sparsity = v;
        s.pattern = std::string("unstructured");
    }
    setSettings(entries, s, tr("Set pruning %1 on %2").arg(QString::fromStdString(textIn)).arg(countText(entries.size())));
}

void PlanEditModel::setBits(const std::vector<int>& entries, int64_t bits)
{
    QuantSettings s;
    s.bits = bits;
    setSettings(entries, s, tr("Set %1 bits on %2").arg(bits).arg(countText(entries.size())));
}

void PlanEditModel::setGroupSize(const std::vector<int>& entries, int64_t groupSize)
{
    QuantSettings s;
    s.groupSize = groupSize;
    setSettings(entries, s, tr("Set group size %1 on %2").arg(groupSize).arg(countText(entries.size())));
}

void PlanEditModel::setSym(const std::vector<int>& entries, bool sym)
{
    QuantSettings s;
    s.sym = sym;
    setSettings(entries, s,
                tr("Set %1 on %2").arg(sym ? tr("symmetric") : tr("asymmetric")).arg(countText(entries.size())));
}

void PlanEditModel::setMethod(const std::vector<int>& entries, const std::string& method)
{
    QuantSettings s;
    s.method = method;
    setSettings(entries, s,
                tr("Set method %1 on %2").arg(QString::fromStdString(method)).arg(countText(entries.size())));
}

void PlanEditModel::clearOverrides(const std::vector<int>& entries)
{
    requireModel();
    std::vector<int> idx(entries);
    std::sort(idx.begin(), idx.end());
    idx.erase(std::unique(idx.begin(), idx.end()), idx.end());
    OverrideDelta before, after;
    for (int i : idx) {
        if (i < 0 || size_t(i) >= m_entries.size())
            continue;
        auto it = m_plan->overrides.find(m_entries[size_t(i)].name);
        if (it == m_plan->overrides.end())
            continue;
        before.emplace_back(it->first, it->second);
        after.emplace_back(it->first, std::nullopt);
    }
    pushOverrides(std::move(before), std::move(after), tr("Clear overrides of %1").arg(countText(after.size())));
}

void PlanEditModel::setDefaults(const PlanDefaults& d)
{
    Plan p = *m_plan;
    p.defaults = d;
    pushPlan(std::move(p), tr("Change plan defaults"), 0);
}

void PlanEditModel::checkRule(const PlanRule& rule)
{
    if (rule.match.empty())
        throw InputError("rule", "the regex is empty");
    try {
        std::regex re(rule.match, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
        throw InputError("rule", "invalid regex '" + rule.match + "': " + e.what());
    }
    checkSettings(rule.set, "rule '" + rule.match + "'");
}

void PlanEditModel::insertRule(int at, const PlanRule& rule)
{
    requireModel();
    checkRule(rule);
    Plan p = *m_plan;
    if (at < 0 || size_t(at) > p.rules.size())
        at = int(p.rules.size());
    p.rules.insert(p.rules.begin() + at, rule);
    pushPlan(std::move(p), tr("Add rule %1").arg(QString::fromStdString(rule.match)), 0);
}

void PlanEditModel::setRule(int index, const PlanRule& rule)
{
    requireModel();
    checkRule(rule);
    if (index < 0 || size_t(index) >= m_plan->rules.size())
        throw InputError("plan editor", "no rule " + std::to_string(index));
    Plan p = *m_plan;
    p.rules[size_t(index)] = rule;
    pushPlan(std::move(p), tr("Edit rule %1").arg(QString::fromStdString(rule.match)), 0);
}

void PlanEditModel::removeRule(int index)
{
    requireModel();
    if (index < 0 || size_t(index) >= m_plan->rules.size())
        throw InputError("plan editor", "no rule " + std::to_string(index));
    Plan p = *m_plan;
    const QString match = QString::fromStdString(p.rules[size_t(index)].match);
    p.rules.erase(p.rules.begin() + index);
    pushPlan(std::move(p), tr("Remove rule %1").arg(match), 0);
}

void PlanEditModel::moveRule(int from, int to)
{
    requireModel();
    const int n = int(m_plan->rules.size());
    if (from < 0 || from >= n || to < 0 || to >= n)
        throw InputError("plan editor", "no rule " + std::to_string(from < 0 || from >= n ? from : to));
    if (from == to)
        return;
    Plan p = *m_plan;
    PlanRule r = p.rules[size_t(from)];
    p.rules.erase(p.rules.begin() + from);
    p.rules.insert(p.rules.begin() + to, r);
    pushPlan(std::move(p), tr("Move rule %1").arg(QString::fromStdString(r.match)), 0);
}

// ---------------------------------------------------------------------------------- trimming
bool PlanEditModel::isExpertDropped(int64_t layer, int64_t expert) const
{
    return std::find(m_plan->droppedExperts.begin(), m_plan->droppedExperts.end(), DroppedExpert{layer, expert})
        != m_plan->droppedExperts.end();
}

bool PlanEditModel::isLayerDropped(int64_t layer) const
{
    return std::find(m_plan->droppedLayers.begin(), m_plan->droppedLayers.end(), layer) != m_plan->droppedLayers.end();
}

bool PlanEditModel::isBlockDropped(int64_t layer) const
{
    return std::find(m_plan->droppedBlocks.begin(), m_plan->droppedBlocks.end(), layer) != m_plan->droppedBlocks.end();
}

void PlanEditModel::setExpertsDropped(const std::vector<DroppedExpert>& experts, bool dropped)
{
    requireModel();
    Plan p = *m_plan;
    std::set<std::pair<int64_t, int64_t>> have;
    for (const DroppedExpert& d : p.droppedExperts)
        have.insert({d.layer, d.expert});
    size_t n = 0;
    for (const DroppedExpert& d : experts) {
        if (dropped && have.insert({d.layer, d.expert}).second) {
            p.droppedExperts.push_back(d);
            ++n;
        } else if (!dropped && have.erase({d.layer, d.expert})) {
            p.droppedExperts.erase(std::find(p.droppedExperts.begin(), p.droppedExperts.end(), d));
            ++n;
        }
    }
    if (dropped)
        std::sort(p.droppedExperts.begin(), p.droppedExperts.end(), [](const DroppedExpert& a, const DroppedExpert& b) {
            return std::make_pair(a.layer, a.expert) < std::make_pair(b.layer, b.expert);
        });
    if (n == 0)
        return;
    QString what = n == 1 ? tr("expert %1 of layer %2").arg(experts.front().expert).arg(experts.front().layer)
                          : tr("%1 experts").arg(n);
    pushPlan(std::move(p), (dropped ? tr("Drop %1") : tr("Keep %1")).arg(what), 0);
}

static void toggleIn(std::vector<int64_t>& v, int64_t x, bool on)
{
    auto it = std::find(v.begin(), v.end(), x);
    if (on && it == v.end()) {
        v.push_back(x);
        std::sort(v.begin(), v.end());
    } else if (!on && it != v.end()) {
        v.erase(it);
    }
}

void PlanEditModel::setLayerDropped(int64_t layer, bool dropped)
{
    requireModel();
    Plan p = *m_plan;
    toggleIn(p.droppedLayers, layer, dropped);
    pushPlan(std::move(p), (dropped ? tr("Drop MoE layer %1") : tr("Keep MoE layer %1")).arg(layer), 0);
}

void PlanEditModel::setBlockDropped(int64_t layer, bool dropped)
{
    requireModel();
    Plan p = *m_plan;
    toggleIn(p.droppedBlocks, layer, dropped);
    pushPlan(std::move(p), (dropped ? tr("Drop block %1") : tr("Keep block %1")).arg(layer), 0);
}

} // namespace moewb
