// SPDX-License-Identifier: MIT
#include "alloc/budgetgauge.h"

#include "moewb/plan/target_groups.h"

#include <QLabel>
#include <QPainter>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace moewb {

QString sizeText(int64_t bytes)
{
    const double a = std::abs(double(bytes));
    if (a >= 1e9)
        return QStringLiteral("%1 GB").arg(double(bytes) / 1e9, 0, 'f', 3);
    if (a >= 1e6)
        return QStringLiteral("%1 MB").arg(double(bytes) / 1e6, 0, 'f', 2);
    return QStringLiteral("%1 kB").arg(double(bytes) / 1e3, 0, 'f', 2);
}

namespace {
const QColor kKindColors[] = {QColor(94, 129, 181), QColor(225, 156, 36), QColor(143, 176, 50), QColor(178, 111, 181)};
const QColor kFixedColor(170, 170, 170);
} // namespace

/// The stacked bar: one segment per kind of linear plus the fixed part, a tick at the target.
class BudgetBar : public QWidget {
public:
    explicit BudgetBar(BudgetGauge* gauge)
        : QWidget(gauge)
        , m_gauge(gauge)
    {
        setMinimumHeight(22);
        setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
    }
    QSize sizeHint() const override { return {300, 22}; }

protected:
    void paintEvent(QPaintEvent*) override
    {
        QPainter p(this);
        const QRectF r = QRectF(rect()).adjusted(1, 3, -1, -3);
        const PlanBreakdown& b = m_gauge->shownBreakdown();
        const int64_t total = m_gauge->shownSize().modelBytes;
        const int64_t scale = std::max<int64_t>({total, m_gauge->targetBytes(), 1});
        const double full = double(scale) * 1.05;
        double x = r.left();
        auto segment = [&](int64_t bytes, const QColor& c) {
            const double w = r.width() * double(bytes) / full;
            p.fillRect(QRectF(x, r.top(), w, r.height()), c);
            x += w;
        };
        for (int k = 0; k < int(LinearKind::Count); ++k)
            segment(b.kinds[k].bytes, kKindColors[k]);
        segment(b.fixedBytes, kFixedColor);
        const bool over = m_gauge->overTarget();
        p.setPen(QPen(over ? QColor(210, 30, 30) : palette().color(QPalette::Mid), over ? 2.5 : 1));
        p.drawRect(r);
        if (m_gauge->targetBytes() > 0) {
            const double tx = r.left() + r.width() * double(m_gauge->targetBytes()) / full;
            p.setPen(QPen(QColor(20, 20, 20), 2));
            p.drawLine(QPointF(tx, rect().top()), QPointF(tx, rect().bottom()));
        }
    }

private:
    BudgetGauge* m_gauge;
};

BudgetGauge::BudgetGauge(PlanEditModel* plan, QWidget* parent)
    : QWidget(parent)
    , m_plan(plan)
    , m_bar(new BudgetBar(this))
    , m_summary(new QLabel(this))
    , m_predicted(new QLabel(this))
    , m_delta(new QLabel(this))
    , m_breakdownLabel(new QLabel(this))
    , m_target(new QLabel(this))
{
    auto* lay = new QVBoxLayout(this);
    lay->setContentsMargins(4, 4, 4, 4);
    lay->setSpacing(2);
    QFont big = m_summary->font();
    big.setBold(true);
    m_summary->setFont(big);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_breakdownLabel->setTextFormat(Qt::RichText);
    m_breakdownLabel->setWordWrap(true);
    lay->addWidget(m_summary);
    m_predicted->setWordWrap(true);
    m_predicted->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_predicted->setToolTip(tr("Predicted KL divergence from the unquantized model, nats per token: for every "
                               "linear ½ Σ F · Σ ΔW² E[x²] at its width (Fisher diagonal from calibrate --fisher, "
                               "RTN error at the table's group size), summed; the budget strategy minimises "
                               "the same sum. 16-bit linears cost 0."));
    lay->addWidget(m_predicted);
    lay->addWidget(m_bar);
    lay->addWidget(m_delta);
    m_target->setWordWrap(true);
    m_target->setStyleSheet(QStringLiteral("color: #b45309; font-weight: bold;"));
    lay->addWidget(m_target);
    lay->addWidget(m_breakdownLabel);
    connect(m_plan, &PlanEditModel::modelConfigChanged, this, [this] { m_costChecked = false; });
    connect(m_plan, &PlanEditModel::planChanged, this, &BudgetGauge::refresh);
    connect(m_plan, &PlanEditModel::entriesChanged, this, &BudgetGauge::onEntriesChanged); // after planChanged
    refresh();
}

BudgetGauge::~BudgetGauge() = default;

void BudgetGauge::setTarget(double bits, int64_t budgetBytes)
{
    m_targetBits = bits;
    m_targetBytes = budgetBytes;
    refresh();
}

bool BudgetGauge::overTarget() const
{
    return m_targetBytes > 0 && m_size.modelBytes > m_targetBytes;
}

QString BudgetGauge::summaryText() const
{
    if (!m_plan->modelConfig())
        return tr("No model open");
    QString text = tr("%1 bits avg · %2 effective · %3")
                       .arg(m_size.averageBits, 0, 'f', 3)
                       .arg(m_size.effectiveBits, 0, 'f', 3)
                       .arg(sizeText(m_size.modelBytes));
    // Pruned weights (#14) still take their bytes in the dense export; show what survives.
    if (m_size.density < 1.0)
        text += tr(" · %1% of the weights nonzero").arg(m_size.density * 100.0, 0, 'f', 1);
    return text;
}

QString BudgetGauge::deltaText() const
{
    if (m_targetBytes <= 0 || !m_plan->modelConfig())
        return {};
    const int64_t d = m_size.modelBytes - m_targetBytes;
    const QString sign = d > 0 ? QStringLiteral("+") : QString();
    return tr("%1%2 %3 the %4-bit target (%5), %6%7 bits")
        .arg(sign, sizeText(d), d > 0 ? tr("over") : tr("within"))
        .arg(m_targetBits, 0, 'f', 2)
        .arg(sizeText(m_targetBytes))
        .arg(m_size.averageBits >= m_targetBits ? QStringLiteral("+") : QString())
        .arg(m_size.averageBits - m_targetBits, 0, 'f', 3);
}

QString BudgetGauge::breakdownText() const
{
    QStringList lines;
    for (int k = 0; k < int(LinearKind::Count); ++k) {
        const KindTotals& t = m_breakdown.kinds[k];
        if (t.linears == 0)
            continue;
        lines << tr("%1: %2, %3 bits avg, %4 linears")
                     .arg(tr(linearKindName(LinearKind(k))), sizeText(t.bytes))
                     .arg(t.averageBits(), 0, 'f', 3)
                     .arg(t.linears);
    }
    lines << tr("fixed (bf16 embeddings, head, norms, routers): %1").arg(sizeText(m_breakdown.fixedBytes));
    return lines.join(QLatin1Char('\n'));
}

QString BudgetGauge::targetText() const
{
    return m_targetText;
}

void BudgetGauge::setCostTable(std::shared_ptr<const ErrorTable> table, const QString& missing)
{
    m_costTable = std::move(table);
    m_costMissing = missing;
    m_costChecked = false;
    resetPredicted();
    refresh();
}

void BudgetGauge::resetPredicted()
{
    if (!m_costChecked) { // once per table and model: its rows must be the plan's linears, in order
        m_costChecked = true;
        m_costFits = m_costTable && m_plan->modelConfig()
            && costTableMismatch(*m_costTable, m_plan->entries()).empty();
        if (!m_costFits && m_costTable && m_costMissing.isEmpty())
            m_costMissing = tr("the cost table was measured for another model");
    }
    m_tracker.reset(m_costFits ? m_costTable.get() : nullptr, m_plan->entries());
}

void BudgetGauge::onEntriesChanged(const QVector<int>& changed, bool all)
{
    if (all) // a new model (the table is checked again), a new plan, rules or defaults
        resetPredicted();
    else
        m_tracker.update(m_plan->entries(), changed.constData(), size_t(changed.size()));
    showPredicted();
}

void BudgetGauge::showPredicted()
{
    const QString text = predictedText();
    m_predicted->setVisible(!text.isEmpty());
    m_predicted->setText(text);
}

QString BudgetGauge::predictedText() const
{
    if (!m_plan->modelConfig())
        return {};
    if (!m_costFits)
        return tr("predicted KLD: %1").arg(m_costMissing);
    const PlanCost& cost = m_tracker.cost();
    QString text = tr("predicted KLD %1 nats/token").arg(cost.kld, 0, 'g', 5);
    auto linears = [](int64_t n) { return n == 1 ? tr("1 linear") : tr("%1 linears").arg(n); };
    QStringList notCounted;
    if (cost.droppedLinears > 0)
        notCounted << tr("%1 dropped: they count 0, what dropping costs is not predicted").arg(linears(cost.droppedLinears));
    if (cost.unmeasuredLinears > 0)
        notCounted << tr("%1 at a width without a measured cost: not counted").arg(linears(cost.unmeasuredLinears));
    if (cost.prunedLinears > 0)
        notCounted << tr("%1 pruned: counted without the pruning").arg(linears(cost.prunedLinears));
    if (cost.otherGroupSize > 0)
        notCounted << tr("%1 counted at group size %2").arg(linears(cost.otherGroupSize)).arg(m_costTable->groupSize);
    if (!notCounted.isEmpty())
        text += QStringLiteral(" (") + notCounted.join(QStringLiteral("; ")) + QLatin1Char(')');
    return text;
}

namespace {

QString targetWarning(const PlanEditModel& plan)
{
    const PlanTarget target = plan.plan().target;
    if (!plan.modelConfig() || target == PlanTarget::Gptq) // per-linear widths: nothing to check
        return {};
    const std::vector<TargetViolation> bad = checkTarget(plan.entries(), target);
    if (bad.empty())
        return {};
    const QString runtime = QString::fromUtf8(planTargetRuntime(target));
    const QString label = QString::fromStdString(bad.front().label);
    const QString widths = QString::fromStdString(widthsText(bad.front().widths));
    if (bad.size() == 1)
        return QObject::tr("1 group that %1 stores at one width has mixed widths (e.g. %2: %3)").arg(runtime, label, widths);
    return QObject::tr("%1 groups that %2 stores at one width have mixed widths (e.g. %3: %4)")
        .arg(qulonglong(bad.size()))
        .arg(runtime, label, widths);
}

} // namespace

void BudgetGauge::refresh()
{
    m_targetText = targetWarning(*m_plan);
    m_target->setVisible(!m_targetText.isEmpty());
    m_target->setText(m_targetText);
    m_size = m_plan->size();
    m_breakdown = m_plan->breakdown();
    m_summary->setText(summaryText());
    showPredicted();
    const QString delta = deltaText();
    m_delta->setVisible(!delta.isEmpty());
    m_delta->setText(delta);
    m_delta->setStyleSheet(overTarget() ? QStringLiteral("color: #c81e1e; font-weight: bold;") : QString());
    const QStringList lines = breakdownText().split(QLatin1Char('\n'));
    // one line per shown part, with a swatch of its colour in the bar
    QString rich;
    int line = 0;
    for (int k = 0; k <= int(LinearKind::Count); ++k) {
        if (k < int(LinearKind::Count) && m_breakdown.kinds[k].linears == 0)
            continue;
        const QColor c = k < int(LinearKind::Count) ? kKindColors[k] : kFixedColor;
        rich += QStringLiteral("<span style=\"color:%1\">&#9632;</span> %2<br>").arg(c.name(), lines.value(line++).toHtmlEscaped());
    }
    m_breakdownLabel->setText(rich);
    m_bar->update();
}

} // namespace moewb
