// SPDX-License-Identifier: MIT
#include "jobdialogs.h"

#include "moewb/alloc/allocate.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QStandardItemModel>
#include <QVBoxLayout>
#include <QMessageBox>
#include <QSettings>
#include <QSpinBox>
#include <QToolButton>

#include <algorithm>

namespace moewb::gui {

namespace {

QFormLayout* makeForm(QDialog* dialog, const QString& title, const QString& help)
{
    dialog->setWindowTitle(title);
    auto* layout = new QVBoxLayout(dialog);
    if (!help.isEmpty()) {
        auto* label = new QLabel(help, dialog);
        label->setWordWrap(true);
        layout->addWidget(label);
    }
    auto* form = new QFormLayout;
    layout->addLayout(form);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, dialog);
    buttons->button(QDialogButtonBox::Ok)->setText(QObject::tr("Start"));
    QObject::connect(buttons, &QDialogButtonBox::accepted, dialog, &QDialog::accept);
    QObject::connect(buttons, &QDialogButtonBox::rejected, dialog, &QDialog::reject);
    layout->addWidget(buttons);
    dialog->setMinimumWidth(560);
    return form;
}

QSpinBox* spin(int lo, int hi, int value, QWidget* parent)
{
    auto* s = new QSpinBox(parent);
    s->setRange(lo, hi);
    s->setValue(value);
    return s;
}

QVariant remembered(const char* key, const QVariant& fallback)
{
    return QSettings().value(QStringLiteral("jobs/") + QLatin1String(key), fallback);
}

void remember(const char* key, const QVariant& value)
{
    QSettings().setValue(QStringLiteral("jobs/") + QLatin1String(key), value);
}

bool refuse(QWidget* parent, const QString& message)
{
    QMessageBox::warning(parent, parent->windowTitle(), message);
    return false;
}

} // namespace

PathEdit::PathEdit(Mode mode, const QString& filter, QWidget* parent)
    : QWidget(parent)
    , m_mode(mode)
    , m_filter(filter)
    , m_edit(new QLineEdit(this))
{
    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_edit, 1);
    auto* browse = new QToolButton(this);
    browse->setText(QStringLiteral("…"));
    layout->addWidget(browse);
    if (mode == OpenFiles)
        m_edit->setPlaceholderText(tr("files separated by ';' (NAME=FILE labels a domain)"));
    connect(browse, &QToolButton::clicked, this, [this] {
        const QString start = QFileInfo(paths().value(0)).path();
        QString chosen;
        switch (m_mode) {
        case OpenFile:
            chosen = QFileDialog::getOpenFileName(this, {}, start, m_filter);
            break;
        case OpenFiles: {
            const QStringList files = QFileDialog::getOpenFileNames(this, {}, start, m_filter);
            if (!files.isEmpty())
                chosen = files.join(QLatin1Char(';'));
            break;
        }
        case SaveFile:
            chosen = QFileDialog::getSaveFileName(this, {}, m_edit->text(), m_filter);
            break;
        case Directory:
            chosen = QFileDialog::getExistingDirectory(this, {}, m_edit->text());
            break;
        case SaveDirectory:
            chosen = QFileDialog::getSaveFileName(this, tr("New directory"), m_edit->text(), {}, nullptr,
                                                  QFileDialog::ShowDirsOnly);
            break;
        }
        if (!chosen.isEmpty())
            m_edit->setText(chosen);
    });
}

QString PathEdit::text() const
{
    return m_edit->text().trimmed();
}

void PathEdit::setText(const QString& text)
{
    m_edit->setText(text);
}

QStringList PathEdit::paths() const
{
    QStringList out;
    for (const QString& p : m_edit->text().split(QLatin1Char(';'), Qt::SkipEmptyParts))
        if (!p.trimmed().isEmpty())
            out << p.trimmed();
    return out;
}

// ---- Calibrate

CalibrateDialog::CalibrateDialog(const QString& modelDir, const QString& defaultOut, QWidget* parent)
    : QDialog(parent)
    , m_modelDir(modelDir)
    , m_data(new PathEdit(PathEdit::OpenFiles, tr("Calibration data (*.jsonl *.txt *.json);;All files (*)"), this))
    , m_samples(spin(1, 1 << 20, remembered("calibrate/samples", 16).toInt(), this))
    , m_seqLen(spin(2, 1 << 20, remembered("calibrate/seqLen", 256).toInt(), this))
    , m_random(new QCheckBox(tr("random windows"), this))
    , m_seed(spin(0, 1 << 30, 0, this))
    , m_fisher(new QCheckBox(tr("Measure loss sensitivity (Fisher)"), this))
    , m_out(new PathEdit(PathEdit::SaveFile, tr("moewb stats (*.h5)"), this))
{
    QFormLayout* form = makeForm(this, tr("Calibrate"),
                                 tr("Runs calibration text through <b>%1</b> layer by layer and writes routing, "
                                    "activation and outlier statistics (as <code>moewb calibrate</code>). The stats "
                                    "open in the views when done.")
                                     .arg(QFileInfo(modelDir).fileName().toHtmlEscaped()));
    m_data->setText(remembered("calibrate/data", QString()).toString());
    m_random->setChecked(remembered("calibrate/random", false).toBool());
    m_fisher->setChecked(remembered("calibrate/fisher", false).toBool());
    m_fisher->setToolTip(tr("Also measures how much each linear's output matters to the loss (the Fisher diagonal, "
                            "as moewb calibrate --fisher). The allocation editor then shows the plan's predicted KL "
                            "divergence while you edit, the heat map can show each expert's predicted cost, and the "
                            "budget strategy minimises it. Keeps every layer's hidden states in memory and takes "
                            "longer."));
    m_out->setText(defaultOut);
    form->addRow(tr("Data:"), m_data);
    form->addRow(tr("Windows:"), m_samples);
    form->addRow(tr("Window length (tokens):"), m_seqLen);
    form->addRow(QString(), m_random);
    form->addRow(tr("Seed:"), m_seed);
    form->addRow(QString(), m_fisher);
    form->addRow(tr("Stats file:"), m_out);
}

CalibrateSettings CalibrateDialog::settings() const
{
    CalibrateSettings s;
    s.modelDir = m_modelDir;
    s.data = m_data->paths();
    s.samples = m_samples->value();
    s.seqLen = m_seqLen->value();
    s.randomWindows = m_random->isChecked();
    s.seed = m_seed->value();
    s.fisher = m_fisher->isChecked();
    s.outPath = m_out->text();
    return s;
}

void CalibrateDialog::accept()
{
    if (m_data->paths().isEmpty())
        return (void)refuse(this, tr("Choose at least one calibration file."));
    if (m_out->text().isEmpty())
        return (void)refuse(this, tr("Choose where the stats file goes."));
    remember("calibrate/data", m_data->text());
    remember("calibrate/samples", m_samples->value());
    remember("calibrate/seqLen", m_seqLen->value());
    remember("calibrate/random", m_random->isChecked());
    remember("calibrate/fisher", m_fisher->isChecked());
    QDialog::accept();
}

// ---- Strategy

StrategyDialog::StrategyDialog(bool haveStats, QWidget* parent)
    : QDialog(parent)
    , m_strategy(new QComboBox(this))
    , m_bits(new QDoubleSpinBox(this))
    , m_groupSize(new QComboBox(this))
    , m_asym(new QCheckBox(tr("asymmetric"), this))
    , m_method(new QComboBox(this))
    , m_runtime(new QComboBox(this))
{
    QFormLayout* form = makeForm(this, tr("Strategy"),
                                 tr("Proposes a plan: bits per linear under an average-bits budget (as "
                                    "<code>moewb plan</code>). It replaces the current plan as one undoable step; "
                                    "edit it by hand afterwards.%1")
                                     .arg(haveStats ? QString()
                                                    : tr("<br><i>No statistics open: strategies that need them are "
                                                         "disabled.</i>")));
    for (const StrategyInfo& info : allocStrategies()) {
        m_strategy->addItem(QString::fromLatin1(info.name), QString::fromLatin1(info.name));
        m_strategy->setItemData(m_strategy->count() - 1, QString::fromLatin1(info.description), Qt::ToolTipRole);
        if (info.needsStats && !haveStats)
            qobject_cast<QStandardItemModel*>(m_strategy->model())->item(m_strategy->count() - 1)->setEnabled(false);
    }
    const int last = m_strategy->findData(remembered("strategy/name", QStringLiteral("uniform")));
    m_strategy->setCurrentIndex(std::max(0, last));
    m_bits->setRange(2.0, 16.0);
    m_bits->setDecimals(3);
    m_bits->setSingleStep(0.25);
    m_bits->setValue(remembered("strategy/bits", 3.0).toDouble());
    for (int g : {32, 64, 128, 256, -1})
        m_groupSize->addItem(g < 0 ? tr("per channel (-1)") : QString::number(g), g);
    m_groupSize->setCurrentIndex(2);
    m_method->addItem(QStringLiteral("gptq"));
    m_method->addItem(QStringLiteral("rtn"));
    form->addRow(tr("Strategy:"), m_strategy);
    form->addRow(tr("Average bits:"), m_bits);
    form->addRow(tr("Group size:"), m_groupSize);
    form->addRow(QString(), m_asym);
    form->addRow(tr("Method:"), m_method);
    for (PlanTarget t : planTargets())
        m_runtime->addItem(QString::fromUtf8(planTargetRuntime(t)), QString::fromUtf8(planTargetName(t)));
    m_runtime->setToolTip(tr("The runtime the plan is for: vLLM keeps all experts of a layer at one width, "
                             "llama.cpp one ggml type per stacked expert tensor (as moewb plan --target)"));
    m_runtime->setCurrentIndex(std::max(0, m_runtime->findData(remembered("strategy/target", QStringLiteral("gptq")))));
    form->addRow(tr("Made for:"), m_runtime);
}

StrategySettings StrategyDialog::settings() const
{
    StrategySettings s;
    s.strategy = m_strategy->currentData().toString();
    s.bits = m_bits->value();
    s.groupSize = m_groupSize->currentData().toInt();
    s.sym = !m_asym->isChecked();
    s.method = m_method->currentText();
    s.target = m_runtime->currentData().toString();
    return s;
}

void StrategyDialog::accept()
{
    remember("strategy/name", m_strategy->currentData());
    remember("strategy/bits", m_bits->value());
    remember("strategy/target", m_runtime->currentData());
    QDialog::accept();
}

// ---- Quantize / Export

QuantizeDialog::QuantizeDialog(const QString& modelDir, const QString& defaultOut, bool exportMode, QWidget* parent)
    : QDialog(parent)
    , m_modelDir(modelDir)
    , m_export(exportMode)
    , m_format(new QComboBox(this))
    , m_out(new PathEdit(PathEdit::SaveDirectory, {}, this))
    , m_force(new QCheckBox(tr("replace the output if it exists"), this))
    , m_calib(new PathEdit(PathEdit::OpenFiles, tr("Calibration data (*.jsonl *.txt *.json);;All files (*)"), this))
    , m_samples(spin(1, 1 << 20, remembered("quantize/samples", 16).toInt(), this))
    , m_seqLen(spin(2, 1 << 20, remembered("quantize/seqLen", 256).toInt(), this))
    , m_damp(new QDoubleSpinBox(this))
    , m_balance(new QComboBox(this))
    , m_balanceHelp(new QLabel(this))
{
    QFormLayout* form = makeForm(
        this, exportMode ? tr("Export") : tr("Quantize"),
        exportMode ? tr("Quantizes <b>%1</b> with the current plan and writes a real checkpoint: GPTQ safetensors "
                        "(transformers, GPTQModel, vLLM) or one GGUF file (llama.cpp). As <code>moewb quantize "
                        "--format gptq|gguf</code>.")
                         .arg(QFileInfo(modelDir).fileName().toHtmlEscaped())
                   : tr("Quantizes <b>%1</b> with the current plan (GPTQ/RTN per linear) into a fake-quantized "
                        "model directory to evaluate. As <code>moewb quantize --format fake</code>.")
                         .arg(QFileInfo(modelDir).fileName().toHtmlEscaped()));
    if (exportMode) {
        m_format->addItem(tr("GPTQ safetensors"), QStringLiteral("gptq"));
        m_format->addItem(tr("GGUF (llama.cpp)"), QStringLiteral("gguf"));
    } else {
        m_format->addItem(tr("fake-quant (dequantized weights)"), QStringLiteral("fake"));
    }
    m_out->setText(defaultOut);
    connect(m_format, qOverload<int>(&QComboBox::currentIndexChanged), this, [this] {
        const QString out = m_out->text();
        const bool gguf = m_format->currentData().toString() == QLatin1String("gguf");
        if (gguf && !out.endsWith(QLatin1String(".gguf")))
            m_out->setText(out + QStringLiteral(".gguf"));
        else if (!gguf && out.endsWith(QLatin1String(".gguf")))
            m_out->setText(out.chopped(5));
    });
    m_calib->setText(remembered("calibrate/data", QString()).toString());
    m_damp->setRange(0.0001, 0.9999);
    m_damp->setDecimals(4);
    m_damp->setValue(0.01);
    form->addRow(tr("Format:"), m_format);
    form->addRow(tr("Output:"), m_out);
    form->addRow(QString(), m_force);
    form->addRow(tr("GPTQ calibration data:"), m_calib);
    form->addRow(tr("Windows:"), m_samples);
    form->addRow(tr("Window length (tokens):"), m_seqLen);
    form->addRow(tr("Damping:"), m_damp);
    // expert balancing (#25, docs/calibration-coverage.md): the engine's names as item data
    m_balance->addItem(tr("Off"), QStringLiteral("off"));
    m_balance->setItemData(0, tr("Each expert learns only from the tokens routed to it."), Qt::ToolTipRole);
    m_balance->addItem(tr("Next choices"), QStringLiteral("next-choices"));
    m_balance->setItemData(1, tr("An expert with too few tokens also learns from the tokens that nearly chose it."),
                           Qt::ToolTipRole);
    m_balance->addItem(tr("All tokens"), QStringLiteral("all-tokens"));
    m_balance->setItemData(2, tr("Every expert learns from every token, weighted by how likely the router was to "
                                 "choose it."),
                           Qt::ToolTipRole);
    m_balance->addItem(tr("Sampled tokens"), QStringLiteral("sampled"));
    m_balance->setItemData(3, tr("As all tokens, estimated from a sample of them: much faster with many experts "
                                 "(e.g. 64 experts, top-8)."),
                           Qt::ToolTipRole);
    const int balance = m_balance->findData(remembered("quantize/balanceExperts", QString::fromLatin1(expertBalanceName(kDefaultExpertBalance))).toString());
    m_balance->setCurrentIndex(std::max(balance, 0));
    m_balanceHelp->setWordWrap(true);
    const auto explain = [this] { m_balanceHelp->setText(m_balance->currentData(Qt::ToolTipRole).toString()); };
    connect(m_balance, qOverload<int>(&QComboBox::currentIndexChanged), this, explain);
    explain();
    form->addRow(tr("Expert balancing:"), m_balance);
    form->addRow(QString(), m_balanceHelp);
}

QuantizeSettings QuantizeDialog::settings() const
{
    QuantizeSettings s;
    s.modelDir = m_modelDir;
    s.format = m_format->currentData().toString();
    s.outPath = m_out->text();
    s.force = m_force->isChecked();
    s.calib = m_calib->paths();
    s.samples = m_samples->value();
    s.seqLen = m_seqLen->value();
    s.damp = m_damp->value();
    s.balanceExperts = m_balance->currentData().toString();
    return s;
}

void QuantizeDialog::accept()
{
    if (m_out->text().isEmpty())
        return (void)refuse(this, tr("Choose the output."));
    if (QFileInfo::exists(m_out->text()) && !m_force->isChecked())
        return (void)refuse(this, tr("%1 exists; choose another output or tick \"replace\".").arg(m_out->text()));
    remember("quantize/samples", m_samples->value());
    remember("quantize/seqLen", m_seqLen->value());
    remember("quantize/balanceExperts", m_balance->currentData().toString());
    QDialog::accept();
}

// ---- Evaluate

EvaluateDialog::EvaluateDialog(const QString& defaultModel, QWidget* parent)
    : QDialog(parent)
    , m_model(new PathEdit(PathEdit::Directory, {}, this))
    , m_label(new QLineEdit(this))
    , m_ppl(new PathEdit(PathEdit::OpenFiles, tr("Text (*.txt);;All files (*)"), this))
    , m_tasks(new PathEdit(PathEdit::OpenFiles, tr("Tasks (*.jsonl);;All files (*)"), this))
    , m_limit(spin(0, 1 << 30, remembered("evaluate/limit", 50).toInt(), this))
    , m_ctx(spin(0, 1 << 20, remembered("evaluate/ctx", 0).toInt(), this))
{
    QFormLayout* form = makeForm(this, tr("Evaluate"),
                                 tr("Perplexity on text and zero-shot accuracy on multiple-choice tasks (as "
                                    "<code>moewb eval</code>). The run becomes a row of the Results table; the "
                                    "size comes from the model's <code>moewb_plan.json</code> (the original "
                                    "model counts as bf16)."));
    m_model->setText(defaultModel);
    m_label->setPlaceholderText(tr("from the plan (strategy@bits), or \"baseline\""));
    m_ppl->setText(remembered("evaluate/ppl", QString()).toString());
    m_tasks->setText(remembered("evaluate/tasks", QString()).toString());
    m_limit->setSpecialValueText(tr("all"));
    m_ctx->setSpecialValueText(tr("the model's (at most 2048)"));
    form->addRow(tr("Model directory:"), m_model);
    form->addRow(tr("Label:"), m_label);
    form->addRow(tr("Perplexity text:"), m_ppl);
    form->addRow(tr("Task files:"), m_tasks);
    form->addRow(tr("Items per task:"), m_limit);
    form->addRow(tr("Context (tokens):"), m_ctx);
}

EvaluateSettings EvaluateDialog::settings() const
{
    EvaluateSettings s;
    s.modelDir = m_model->text();
    s.label = m_label->text().trimmed();
    s.pplFiles = m_ppl->paths();
    s.taskFiles = m_tasks->paths();
    s.taskLimit = m_limit->value();
    s.ctx = m_ctx->value();
    return s;
}

void EvaluateDialog::accept()
{
    if (m_model->text().isEmpty())
        return (void)refuse(this, tr("Choose the model directory to evaluate."));
    if (m_ppl->paths().isEmpty() && m_tasks->paths().isEmpty())
        return (void)refuse(this, tr("Choose a text for perplexity or a task file."));
    remember("evaluate/ppl", m_ppl->text());
    remember("evaluate/tasks", m_tasks->text());
    remember("evaluate/limit", m_limit->value());
    remember("evaluate/ctx", m_ctx->value());
    QDialog::accept();
}

} // namespace moewb::gui
