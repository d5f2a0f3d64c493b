// SPDX-License-Identifier: MIT
#include "alloc/strategypanel.h"

#include "alloc/budgetgauge.h"
#include "alloc/planeditmodel.h"

#include "moewb/core/error.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QSlider>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QTimer>
#include <QtConcurrent/QtConcurrentRun>

#include <cmath>

namespace moewb {

namespace {
constexpr int kDebounceMs = 120;
}

StrategyPanel::StrategyPanel(PlanEditModel* plan, AllocBackend backend, QWidget* parent)
    : QWidget(parent)
    , m_plan(plan)
    , m_strategy(new QComboBox(this))
    , m_k(new QSpinBox(this))
    , m_topP(new QDoubleSpinBox(this))
    , m_perLayer(new QSpinBox(this))
    , m_seed(new QSpinBox(this))
    , m_groupSize(new QComboBox(this))
    , m_sym(new QCheckBox(tr("symmetric"), this))
    , m_method(new QComboBox(this))
    , m_runtime(new QComboBox(this))
    , m_slider(new QSlider(Qt::Horizontal, this))
    , m_bitsBox(new QDoubleSpinBox(this))
    , m_live(new QCheckBox(tr("Live"), this))
    , m_solveButton(new QPushButton(tr("Solve"), this))
    , m_message(new QLabel(this))
    , m_debounce(new QTimer(this))
{
    m_k->setRange(-1, 4096);
    m_k->setSpecialValueText(tr("as many as fit"));
    m_k->setValue(-1);
    m_k->setToolTip(tr("first-k / block: number of MoE blocks raised"));
    m_topP->setRange(-0.01, 1.0);
    m_topP->setDecimals(2);
    m_topP->setSingleStep(0.05);
    m_topP->setSpecialValueText(tr("as many as fit"));
    m_topP->setValue(-0.01);
    m_topP->setToolTip(tr("outlier: fraction of linears raised"));
    m_perLayer->setRange(-1, 4096);
    m_perLayer->setSpecialValueText(tr("global ranking"));
    m_perLayer->setValue(-1);
    m_perLayer->setToolTip(tr("frequency / random: experts raised in every MoE layer"));
    m_seed->setRange(0, 1 << 30);
    m_seed->setToolTip(tr("random: seed"));
    for (int g : {32, 64, 128, -1})
        m_groupSize->addItem(g < 0 ? tr("row (-1)") : QString::number(g), g);
    m_groupSize->setCurrentIndex(2);
    m_sym->setChecked(true);
    m_method->addItem(QStringLiteral("gptq"));
    m_method->addItem(QStringLiteral("rtn"));
    for (PlanTarget t : planTargets())
        m_runtime->addItem(QString::fromUtf8(planTargetRuntime(t)), QString::fromUtf8(planTargetName(t)));
    m_runtime->setItemData(0, tr("Per-linear widths (GPTQ checkpoints: every linear its own width)"), Qt::ToolTipRole);
    m_runtime->setItemData(1, tr("vLLM's fused MoE stores all experts of a layer at one width, and q/k/v and an "
                                 "MLP's gate/up share one: the solve keeps each such group at one width"),
                           Qt::ToolTipRole);
    m_runtime->setItemData(2, tr("llama.cpp stores all experts of a layer and projection in one tensor of one ggml "
                                 "type: the solve keeps each such tensor at one width"),
                           Qt::ToolTipRole);
    m_slider->setRange(200, 800);
    m_slider->setSingleStep(5);
    m_slider->setPageStep(25);
    m_slider->setValue(400);
    m_slider->setToolTip(tr("Target average bits; with Live on, dragging re-solves"));
    m_bitsBox->setRange(2.0, 8.0);
    m_bitsBox->setDecimals(2);
    m_bitsBox->setSingleStep(0.05);
    m_bitsBox->setValue(4.0);
    m_bitsBox->setSuffix(tr(" bits"));
    m_live->setChecked(true);
    m_message->setWordWrap(true);
    m_message->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_debounce->setSingleShot(true);
    m_debounce->setInterval(kDebounceMs);

    auto* form = new QFormLayout(this);
    form->addRow(tr("Strategy"), m_strategy);
    auto* target = new QHBoxLayout;
    target->addWidget(m_slider, 1);
    target->addWidget(m_bitsBox);
    form->addRow(tr("Target"), target);
    form->addRow(tr("k"), m_k);
    form->addRow(tr("top p"), m_topP);
    form->addRow(tr("Per layer"), m_perLayer);
    form->addRow(tr("Seed"), m_seed);
    form->addRow(tr("Group size"), m_groupSize);
    form->addRow(QString(), m_sym);
    form->addRow(tr("Method"), m_method);
    form->addRow(tr("Made for"), m_runtime);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(m_live);
    buttons->addStretch(1);
    buttons->addWidget(m_solveButton);
    form->addRow(buttons);
    form->addRow(m_message);

    connect(m_slider, &QSlider::sliderPressed, this, [this] { newGesture(); });
    connect(m_slider, &QSlider::valueChanged, this, [this](int v) {
        const QSignalBlocker block(m_bitsBox);
        m_bitsBox->setValue(v / 100.0);
        emitTarget();
        requestSolve();
    });
    connect(m_bitsBox, qOverload<double>(&QDoubleSpinBox::valueChanged), this, [this](double v) {
        newGesture();
        const QSignalBlocker block(m_slider);
        m_slider->setValue(int(std::lround(v * 100)));
        emitTarget();
        requestSolve();
    });
    auto paramChanged = [this] {
        newGesture();
        updateEnabled();
        emitTarget();
        requestSolve();
    };
    connect(m_strategy, qOverload<int>(&QComboBox::currentIndexChanged), this, paramChanged);
    connect(m_k, qOverload<int>(&QSpinBox::valueChanged), this, paramChanged);
    connect(m_topP, qOverload<double>(&QDoubleSpinBox::valueChanged), this, paramChanged);
    connect(m_perLayer, qOverload<int>(&QSpinBox::valueChanged), this, paramChanged);
    connect(m_seed, qOverload<int>(&QSpinBox::valueChanged), this, paramChanged);
    connect(m_groupSize, qOverload<int>(&QComboBox::currentIndexChanged), this, paramChanged);
    connect(m_sym, &QCheckBox::toggled, this, paramChanged);
    connect(m_method, qOverload<int>(&QComboBox::currentIndexChanged), this, paramChanged);
    connect(m_runtime, qOverload<int>(&QComboBox::currentIndexChanged), this, paramChanged);
    connect(m_solveButton, &QPushButton::clicked, this, [this] {
        newGesture();
        solve();
    });
    connect(m_debounce, &QTimer::timeout, this, &StrategyPanel::solve);
    connect(&m_watcher, &QFutureWatcher<Outcome>::finished, this, &StrategyPanel::onFinished);
    connect(m_plan, &PlanEditModel::modelConfigChanged, this, [this] {
        newGesture();
        emitTarget();
    });
    // The box shows what the open plan is made for (a loaded plan, an undo); no solve follows.
    connect(m_plan, &PlanEditModel::planChanged, this, [this] {
        const QSignalBlocker block(m_runtime);
        setPlanTarget(m_plan->plan().target);
    });
    setBackend(std::move(backend));
}

StrategyPanel::~StrategyPanel()
{
    m_watcher.waitForFinished();
}

void StrategyPanel::setBackend(AllocBackend backend)
{
    m_backend = std::move(backend);
    const QString current = m_strategy->currentText();
    {
        const QSignalBlocker block(m_strategy);
        m_strategy->clear();
        for (const StrategyInfo& s : m_backend.strategies) {
            m_strategy->addItem(QString::fromUtf8(s.name));
            auto* model = qobject_cast<QStandardItemModel*>(m_strategy->model());
            QStandardItem* item = model->item(m_strategy->count() - 1);
            item->setToolTip(QString::fromUtf8(s.description));
            if (s.needsErrorTable && !m_backend.hasErrorTable) {
                item->setEnabled(false);
                item->setToolTip(tr("Needs the predicted cost of every linear: calibrate with \"Measure loss "
                                    "sensitivity (Fisher)\" (moewb calibrate --fisher); with a model and such "
                                    "statistics open it is measured by itself (Jobs → Measure predicted cost)"));
            }
        }
        const int i = m_strategy->findText(current);
        m_strategy->setCurrentIndex(i >= 0 ? i : std::max(0, m_strategy->findText(QStringLiteral("uniform"))));
    }
    m_solveButton->setEnabled(m_backend.valid());
    m_live->setEnabled(m_backend.valid());
    if (!m_backend.valid())
        m_message->setText(tr("No allocator: open a model and its calibration statistics"));
    updateEnabled();
    emitTarget();
}

AllocOptions StrategyPanel::options() const
{
    AllocOptions o;
    o.strategy = m_strategy->currentText().toStdString();
    o.targetBits = m_slider->value() / 100.0;
    o.groupSize = m_groupSize->currentData().toLongLong();
    o.sym = m_sym->isChecked();
    o.method = m_method->currentText().toStdString();
    o.seed = uint64_t(m_seed->value());
    o.k = m_k->value();
    o.topP = m_topP->value() < 0 ? -1.0 : m_topP->value();
    o.perLayer = m_perLayer->value();
    o.target = planTarget();
    return o;
}

void StrategyPanel::setPlanTarget(PlanTarget target)
{
    m_runtime->setCurrentIndex(std::max(0, m_runtime->findData(QString::fromUtf8(planTargetName(target)))));
}

PlanTarget StrategyPanel::planTarget() const
{
    PlanTarget t = PlanTarget::Gptq;
    parsePlanTarget(m_runtime->currentData().toString().toStdString(), t);
    return t;
}

void StrategyPanel::setStrategy(const QString& name)
{
    const int i = m_strategy->findText(name);
    if (i >= 0)
        m_strategy->setCurrentIndex(i);
}

void StrategyPanel::setTargetBits(double bits)
{
    m_bitsBox->setValue(bits);
}

double StrategyPanel::targetBits() const
{
    return m_slider->value() / 100.0;
}

void StrategyPanel::setLive(bool live)
{
    m_live->setChecked(live);
}

bool StrategyPanel::isSolving() const
{
    return m_watcher.isRunning();
}

QString StrategyPanel::message() const
{
    return m_message->text();
}

void StrategyPanel::updateEnabled()
{
    const std::string name = m_strategy->currentText().toStdString();
    unsigned params = 0;
    for (const StrategyInfo& s : m_backend.strategies)
        if (name == s.name)
            params = s.params;
    m_k->setEnabled(params & kParamK);
    m_topP->setEnabled(params & kParamTopP);
    m_perLayer->setEnabled(params & kParamPerLayer);
    m_seed->setEnabled(params & kParamSeed);
}

void StrategyPanel::emitTarget()
{
    int64_t bytes = 0;
    if (m_backend.budgetBytes && m_plan->modelConfig()) {
        try {
            bytes = m_backend.budgetBytes(options());
        } catch (const Error&) {
            bytes = 0;
        }
    }
    emit targetChanged(targetBits(), bytes);
}

void StrategyPanel::requestSolve()
{
    if (m_live->isChecked() && m_backend.valid())
        m_debounce->start();
}

void StrategyPanel::solve()
{
    m_debounce->stop();
    if (!m_backend.valid() || !m_plan->modelConfig())
        return;
    if (m_watcher.isRunning()) {
        m_pending = true; // the newest request runs when this one is done
        return;
    }
    const AllocOptions opt = options();
    const AllocBackend backend = m_backend;
    const int gesture = m_gesture;
    m_watcher.setProperty("gesture", gesture);
    m_watcher.setProperty("config", QVariant::fromValue(quintptr(m_plan->modelConfig())));
    m_watcher.setFuture(QtConcurrent::run([backend, opt] {
        Outcome o;
        o.options = opt;
        try {
            o.result = backend.solve(opt);
            o.plan = std::make_shared<Plan>(backend.toPlan(o.result, opt));
            o.result.entries = {}; // the plan holds them; only sizes and notes are shown
        } catch (const std::exception& e) {
            o.error = QString::fromStdString(e.what());
        }
        return o;
    }));
}

void StrategyPanel::onFinished()
{
    const Outcome o = m_watcher.result(); // cheap: the plan is shared, the entries were dropped
    const bool stale = m_watcher.property("config").value<quintptr>() != quintptr(m_plan->modelConfig());
    if (!stale) {
        if (!o.error.isEmpty()) {
            m_message->setStyleSheet(QStringLiteral("color: #c81e1e;"));
            m_message->setText(o.error);
            emit failed(o.error);
        } else {
            Plan p = std::move(*o.plan); // this slot is its only reader
            const Plan& cur = m_plan->plan();
            p.droppedExperts = cur.droppedExperts; // the strategy sets bits; trimming stays the user's
            p.droppedLayers = cur.droppedLayers;
            p.droppedBlocks = cur.droppedBlocks;
            p.activationBits = cur.activationBits;
            const QString text = tr("Strategy %1 at %2 bits")
                                     .arg(QString::fromStdString(o.options.strategy))
                                     .arg(o.options.targetBits, 0, 'f', 2);
            try {
                m_plan->setPlanMerged(std::move(p), text, m_watcher.property("gesture").toInt());
                QStringList lines;
                lines << tr("%1: %2 bits avg, %3 of %4 budget")
                             .arg(QString::fromStdString(o.options.strategy))
                             .arg(o.result.size.averageBits, 0, 'f', 3)
                             .arg(sizeText(o.result.size.modelBytes), sizeText(o.result.budgetBytes));
                for (const std::string& n : o.result.notes)
                    lines << QString::fromStdString(n);
                m_message->setStyleSheet(QString());
                m_message->setText(lines.join(QLatin1Char('\n')));
                emit solved();
            } catch (const Error& e) {
                m_message->setStyleSheet(QStringLiteral("color: #c81e1e;"));
                m_message->setText(QString::fromStdString(e.what()));
                emit failed(m_message->text());
            }
        }
    }
    if (m_pending) {
        m_pending = false;
        solve();
    }
}

} // namespace moewb
