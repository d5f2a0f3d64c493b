// SPDX-License-Identifier: MIT
#include "results/resultsmodel.h"

#include "moewb/plan/plan.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

namespace moewb {

std::vector<int> paretoFront(const std::vector<double>& x, const std::vector<double>& y)
{
    std::vector<int> order;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i)
        if (!std::isnan(x[i]) && !std::isnan(y[i]))
            order.push_back(int(i));
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return x[a] != x[b] ? x[a] < x[b] : y[a] < y[b]; });
    // Sweep by x ascending: a point is on the front when its y is below every y seen at a smaller
    // x; points equal in both coordinates do not dominate each other.
    std::vector<int> front;
    double bestY = INFINITY;
    for (size_t k = 0; k < order.size(); ++k) {
        const int i = order[k];
        const bool sameAsLast = !front.empty() && x[front.back()] == x[i] && y[front.back()] == y[i];
        if (y[i] < bestY || sameAsLast) {
            front.push_back(i);
            bestY = y[i];
        }
    }
    return front;
}

QString planSummary(const QString& planJson)
{
    if (planJson.isEmpty())
        return QStringLiteral("–");
    Plan p;
    try {
        p = parsePlanJson(planJson.toStdString(), "plan");
    } catch (const std::exception&) {
        return QObject::tr("invalid plan");
    }
    const PlanDefaults& d = p.defaults;
    QStringList parts;
    parts << QStringLiteral("%1b g%2 %3%4")
                 .arg(d.bits)
                 .arg(d.groupSize)
                 .arg(QString::fromStdString(d.method), d.sym ? QString() : QStringLiteral(" asym"));
    auto count = [&parts](size_t n, const char* one, const char* many) {
        if (n > 0)
            parts << QStringLiteral("%1 %2").arg(n).arg(QLatin1String(n == 1 ? one : many));
    };
    count(p.rules.size(), "rule", "rules");
    count(p.overrides.size(), "override", "overrides");
    count(p.droppedExperts.size(), "expert dropped", "experts dropped");
    count(p.droppedLayers.size() + p.droppedBlocks.size(), "layer dropped", "layers dropped");
    if (p.activationBits < 16)
        parts << QStringLiteral("A%1").arg(p.activationBits);
    return parts.join(QStringLiteral(", "));
}

ResultsModel::ResultsModel(QObject* parent)
    : QAbstractTableModel(parent)
{
}

ResultsModel::~ResultsModel() = default;

void ResultsModel::setRuns(std::vector<RunResult> runs)
{
    beginResetModel();
    m_runs = std::move(runs);
    recompute();
    endResetModel();
    emit runsChanged();
}

void ResultsModel::addRun(RunResult run)
{
    std::vector<RunResult> runs = m_runs;
    runs.push_back(std::move(run));
    setRuns(std::move(runs)); // a new task name adds a column: reset
}

void ResultsModel::removeRun(int row)
{
    if (row < 0 || row >= int(m_runs.size()))
        return;
    std::vector<RunResult> runs = m_runs;
    runs.erase(runs.begin() + row);
    setRuns(std::move(runs));
}

double ResultsModel::quality(const RunResult& run, Quality axis)
{
    return axis == Quality::Kld ? run.kld : run.perplexity;
}

void ResultsModel::setQualityAxis(Quality axis)
{
    if (axis == m_quality)
        return;
    m_quality = axis;
    recompute();
    if (!m_runs.empty())
        emit dataChanged(index(0, ParetoColumn), index(rowCount() - 1, ParetoColumn));
    emit headerDataChanged(Qt::Horizontal, ParetoColumn, ParetoColumn);
    emit runsChanged();
}

bool ResultsModel::isOnFront(int row) const
{
    return std::find(m_front.begin(), m_front.end(), row) != m_front.end();
}

void ResultsModel::recompute()
{
    std::set<QString> tasks;
    std::vector<double> x, y;
    m_hasKld = false;
    for (const RunResult& r : m_runs) {
        for (auto it = r.taskAccuracy.cbegin(); it != r.taskAccuracy.cend(); ++it)
            tasks.insert(it.key());
        x.push_back(double(r.modelBytes));
        y.push_back(quality(r, m_quality));
        m_hasKld = m_hasKld || r.hasKld();
    }
    m_tasks = QStringList(tasks.begin(), tasks.end());
    m_front = paretoFront(x, y);
    m_planSummaries.clear();
    for (const RunResult& r : m_runs)
        m_planSummaries << planSummary(r.planJson);
}

int ResultsModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : int(m_runs.size());
}

int ResultsModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : FirstTaskColumn + int(m_tasks.size());
}

QVariant ResultsModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.row() >= int(m_runs.size()))
        return {};
    const RunResult& r = m_runs[size_t(index.row())];
    const int c = index.column();
    if (role == Qt::DisplayRole || role == SortRole) {
        const bool sort = role == SortRole;
        switch (c) {
        case LabelColumn:
            return r.label;
        case PlanColumn:
            return m_planSummaries.value(index.row());
        case BitsColumn:
            return sort ? QVariant(r.averageBits) : QVariant(QString::number(r.averageBits, 'f', 3));
        case SizeColumn:
            return sort ? QVariant(double(r.modelBytes)) : QVariant(QString::number(double(r.modelBytes) / 1e6, 'f', 2));
        case PerplexityColumn:
            if (sort)
                return r.hasPerplexity() ? r.perplexity : INFINITY;
            return r.hasPerplexity() ? QString::number(r.perplexity, 'f', 4) : QStringLiteral("–");
        case KldColumn:
            if (sort)
                return r.hasKld() ? r.kld : INFINITY;
            return r.hasKld() ? QString::number(r.kld, 'g', 4) : QStringLiteral("–");
        case SameTopColumn: {
            const bool has = r.sameTop == r.sameTop;
            if (sort)
                return has ? r.sameTop : -INFINITY;
            return has ? QString::number(100.0 * r.sameTop, 'f', 2) : QStringLiteral("–");
        }
        case ParetoColumn:
            return sort ? QVariant(isOnFront(index.row()) ? 0 : 1)
                        : QVariant(isOnFront(index.row()) ? QStringLiteral("★") : QString());
        default: {
            const QString task = m_tasks.value(c - FirstTaskColumn);
            const auto it = r.taskAccuracy.constFind(task);
            if (it == r.taskAccuracy.cend())
                return sort ? QVariant(-INFINITY) : QVariant(QStringLiteral("–"));
            return sort ? QVariant(it.value()) : QVariant(QString::number(it.value(), 'f', 4));
        }
        }
    }
    if (role == Qt::TextAlignmentRole && c != LabelColumn && c != PlanColumn)
        return int(Qt::AlignRight | Qt::AlignVCenter);
    if (role == Qt::ToolTipRole) {
        QString tip = QStringLiteral("<b>%1</b><br>%2").arg(r.label.toHtmlEscaped(), r.modelPath.toHtmlEscaped());
        if (!r.pplFile.isEmpty())
            tip += tr("<br>perplexity on %1").arg(r.pplFile.toHtmlEscaped());
        if (!r.planPath.isEmpty())
            tip += tr("<br>plan %1").arg(r.planPath.toHtmlEscaped());
        if (r.hasKld())
            tip += tr("<br>KL divergence from the unquantized model: %1 nats").arg(r.kld, 0, 'g', 6);
        if (r.hasKldInterval())
            tip += tr("<br>KLD − uniform's: %1, 95 % interval [%2, %3]%4")
                       .arg(r.kldDiff, 0, 'g', 4)
                       .arg(r.kldLo, 0, 'g', 4)
                       .arg(r.kldHi, 0, 'g', 4)
                       .arg(r.kldLo > 0 || r.kldHi < 0 ? tr(" — excludes 0") : QString());
        return tip;
    }
    return {};
}

QVariant ResultsModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case LabelColumn:
        return tr("Run");
    case PlanColumn:
        return tr("Plan");
    case BitsColumn:
        return tr("Avg bits");
    case SizeColumn:
        return tr("Size (MB)");
    case PerplexityColumn:
        return tr("Perplexity");
    case KldColumn:
        return tr("KLD");
    case SameTopColumn:
        return tr("Same top %");
    case ParetoColumn:
        return m_quality == Quality::Kld ? tr("Pareto (KLD)") : tr("Pareto");
    default:
        return tr("%1 acc").arg(m_tasks.value(section - FirstTaskColumn));
    }
}

} // namespace moewb
