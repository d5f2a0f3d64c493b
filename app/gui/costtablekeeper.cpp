// SPDX-License-Identifier: MIT
#include "costtablekeeper.h"

#include "enginejobs.h"

#include "document.h"
#include "jobs/jobrunner.h"

#include <QPointer>

#include <any>
#include <memory>

namespace moewb::gui {

CostTableKeeper::CostTableKeeper(Document* document, JobRunner* runner, QObject* parent)
    : QObject(parent)
    , m_document(document)
    , m_runner(runner)
{
    connect(m_document, &Document::modelChanged, this, &CostTableKeeper::onDocumentChanged);
    connect(m_document, &Document::statsChanged, this, &CostTableKeeper::onDocumentChanged);
    auto ended = [this](int id) {
        if (id == m_job)
            setJob(0);
    };
    connect(m_runner, &JobRunner::finished, this, ended);
    connect(m_runner, &JobRunner::failed, this, ended);
    connect(m_runner, &JobRunner::cancelled, this, ended);
}

void CostTableKeeper::onDocumentChanged()
{
    ++m_generation;
    if (m_job) { // measured for what was open before
        m_runner->cancel(m_job);
        setJob(0);
    }
    const CalibStats* stats = m_document->stats();
    if (m_automatic && m_document->config() && stats && stats->hasFisher())
        start();
}

int CostTableKeeper::start()
{
    const ModelConfig* cfg = m_document->config();
    const CalibStats* stats = m_document->stats();
    if (!cfg) {
        m_lastError = tr("open a model directory first (File → Open model directory…)");
        return 0;
    }
    if (!stats || !stats->hasFisher()) {
        m_lastError = tr("the statistics have no loss sensitivity: calibrate with \"Measure loss sensitivity "
                         "(Fisher)\" (moewb calibrate --fisher)");
        return 0;
    }
    if (m_job && m_jobGeneration == m_generation)
        return m_job; // already measuring these
    // The job works on copies: the document may open other files while it runs.
    Job job = costTableJob(std::make_shared<const ModelConfig>(*cfg), m_document->modelDir(),
                           std::make_shared<const CalibStats>(*stats));
    const quint64 generation = m_generation;
    QPointer<CostTableKeeper> self(this);
    job.onDone = [self, generation](const JobResult& r) {
        if (self && self->m_generation == generation) // the model and stats it was measured for are still open
            self->m_document->setCostTable(std::any_cast<std::shared_ptr<const ErrorTable>>(r.value));
    };
    m_lastError.clear();
    m_jobGeneration = generation;
    setJob(m_runner->submit(std::move(job)));
    return m_job;
}

void CostTableKeeper::setJob(int id)
{
    const bool was = m_job != 0;
    m_job = id;
    if (was != (id != 0))
        emit measuringChanged(id != 0);
}

} // namespace moewb::gui
