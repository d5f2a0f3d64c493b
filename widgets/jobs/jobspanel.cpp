// SPDX-License-Identifier: MIT
#include "jobs/jobspanel.h"

#include "jobs/eta.h"
#include "jobs/jobrunner.h"

#include <QDateTime>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QToolButton>
#include <QTreeWidget>
#include <QVBoxLayout>

#include <algorithm>

namespace moewb {

JobsPanel::JobsPanel(JobRunner* runner, QWidget* parent)
    : QWidget(parent)
    , m_runner(runner)
    , m_list(new QTreeWidget(this))
    , m_log(new QPlainTextEdit(this))
{
    m_list->setColumnCount(ColumnCount);
    m_list->setHeaderLabels({tr("Job"), tr("State"), tr("Stage"), tr("Progress"), tr("ETA"), QString()});
    m_list->setRootIsDecorated(false);
    m_list->setUniformRowHeights(true);
    m_list->header()->setStretchLastSection(false);
    m_list->header()->setSectionResizeMode(StageColumn, QHeaderView::Stretch);
    m_list->setColumnWidth(NameColumn, 220);
    m_list->setColumnWidth(StateColumn, 80);
    m_list->setColumnWidth(ProgressColumn, 140);
    m_list->setColumnWidth(EtaColumn, 90);
    m_list->setColumnWidth(CancelColumn, 70);
    m_log->setReadOnly(true);
    m_log->setMaximumBlockCount(5000);
    m_log->setPlaceholderText(tr("Jobs (Calibrate, Strategy, Quantize, Evaluate, Export in the Jobs menu) log here."));

    auto* clear = new QPushButton(tr("Clear finished"), this);
    connect(clear, &QPushButton::clicked, this, &JobsPanel::clearFinished);
    auto* tools = new QHBoxLayout;
    tools->addWidget(new QLabel(tr("Jobs run one after another; the window stays usable."), this), 1);
    tools->addWidget(clear);

    auto* splitter = new QSplitter(Qt::Vertical, this);
    splitter->addWidget(m_list);
    splitter->addWidget(m_log);
    splitter->setStretchFactor(0, 1);
    splitter->setStretchFactor(1, 1);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(2, 2, 2, 2);
    layout->addLayout(tools);
    layout->addWidget(splitter);

    connect(runner, &JobRunner::submitted, this, &JobsPanel::onSubmitted);
    connect(runner, &JobRunner::progress, this, &JobsPanel::onProgress);
    connect(runner, &JobRunner::stateChanged, this, &JobsPanel::onStateChanged);
    connect(runner, &JobRunner::failed, this, &JobsPanel::onFailed);
    connect(runner, &JobRunner::logMessage, this, &JobsPanel::appendLog);
}

JobsPanel::~JobsPanel() = default;

void JobsPanel::onSubmitted(int id, const QString& name, const QString& kind)
{
    auto* item = new QTreeWidgetItem(m_list);
    item->setText(NameColumn, name);
    item->setToolTip(NameColumn, QStringLiteral("%1 (#%2, %3)").arg(name).arg(id).arg(kind));
    item->setText(StateColumn, jobStateName(JobState::Queued));
    item->setData(NameColumn, Qt::UserRole, id);
    m_items.insert(id, item);
    auto* progress = new QProgressBar(m_list);
    progress->setRange(0, 100);
    progress->setValue(0);
    progress->setFormat(QStringLiteral("%p%"));
    m_list->setItemWidget(item, ProgressColumn, progress);
    auto* cancel = new QToolButton(m_list);
    cancel->setText(tr("Cancel"));
    cancel->setToolTip(tr("Stop this job; it leaves no output behind"));
    connect(cancel, &QToolButton::clicked, this, [this, id] { m_runner->cancel(id); });
    m_list->setItemWidget(item, CancelColumn, cancel);
    m_list->scrollToItem(item);
}

void JobsPanel::onProgress(int id, const QString& stage, qint64 done, qint64 total, const QString& message, double eta)
{
    QTreeWidgetItem* item = m_items.value(id);
    if (!item)
        return;
    QString text = stage;
    if (total > 0)
        text += QStringLiteral(" %1/%2").arg(done).arg(total);
    if (!message.isEmpty())
        text += QStringLiteral(" — ") + message;
    item->setText(StageColumn, text);
    item->setToolTip(StageColumn, text);
    item->setText(EtaColumn, formatEta(eta));
    if (QProgressBar* b = bar(id)) {
        if (total > 0) {
            b->setRange(0, 100);
            b->setValue(int(std::min<qint64>(100, done * 100 / total)));
        } else {
            b->setRange(0, 0); // busy: the stage does not know its length
        }
    }
}

void JobsPanel::onStateChanged(int id, JobState state)
{
    QTreeWidgetItem* item = m_items.value(id);
    if (!item)
        return;
    item->setText(StateColumn, jobStateName(state));
    if (state == JobState::Queued || state == JobState::Running)
        return;
    item->setText(EtaColumn, QString());
    if (QProgressBar* b = bar(id)) {
        b->setRange(0, 100);
        if (state == JobState::Done)
            b->setValue(100);
    }
    if (QWidget* cancel = m_list->itemWidget(item, CancelColumn))
        cancel->setEnabled(false);
    if (state == JobState::Done) {
        item->setText(StageColumn, tr("finished"));
    } else if (state == JobState::Cancelled) {
        item->setText(StageColumn, tr("cancelled, nothing written"));
        item->setForeground(StateColumn, QColor(128, 128, 128));
    }
}

void JobsPanel::onFailed(int id, const QString& message)
{
    QTreeWidgetItem* item = m_items.value(id);
    if (!item)
        return;
    item->setText(StageColumn, message);
    item->setToolTip(StageColumn, message);
    item->setForeground(StateColumn, QColor(200, 30, 30));
    item->setForeground(StageColumn, QColor(200, 30, 30));
}

void JobsPanel::appendLog(int id, const QString& line)
{
    m_log->appendPlainText(QStringLiteral("%1 [#%2 %3] %4")
                               .arg(QTime::currentTime().toString(QStringLiteral("HH:mm:ss")))
                               .arg(id)
                               .arg(m_runner->jobKind(id), line));
}

void JobsPanel::clearFinished()
{
    for (auto it = m_items.begin(); it != m_items.end();) {
        const JobState s = m_runner->state(it.key());
        if (s == JobState::Queued || s == JobState::Running) {
            ++it;
            continue;
        }
        delete it.value();
        it = m_items.erase(it);
    }
}

QProgressBar* JobsPanel::bar(int id) const
{
    QTreeWidgetItem* item = m_items.value(id);
    return item ? qobject_cast<QProgressBar*>(m_list->itemWidget(item, ProgressColumn)) : nullptr;
}

QString JobsPanel::stateText(int id) const
{
    QTreeWidgetItem* item = m_items.value(id);
    return item ? item->text(StateColumn) : QString();
}

QString JobsPanel::stageText(int id) const
{
    QTreeWidgetItem* item = m_items.value(id);
    return item ? item->text(StageColumn) : QString();
}

QString JobsPanel::etaText(int id) const
{
    QTreeWidgetItem* item = m_items.value(id);
    return item ? item->text(EtaColumn) : QString();
}

int JobsPanel::percent(int id) const
{
    const QProgressBar* b = bar(id);
    if (!b)
        return -1;
    return b->maximum() == 0 ? -1 : b->value();
}

QToolButton* JobsPanel::cancelButton(int id) const
{
    QTreeWidgetItem* item = m_items.value(id);
    return item ? qobject_cast<QToolButton*>(m_list->itemWidget(item, CancelColumn)) : nullptr;
}

QString JobsPanel::logText() const
{
    return m_log->toPlainText();
}

} // namespace moewb
