// SPDX-License-Identifier: MIT
// The runs of a session as a table: label, average bits, size, perplexity, KL divergence and
// same-top-token share (when measured), whether the run is on the Pareto front of size against the
// chosen quality measure (perplexity or KLD), then one accuracy column per task any run was
// scored on.
#pragma once

#include "results/runresult.h"

#include <QAbstractTableModel>
#include <QStringList>

#include <vector>

namespace moewb {

/// Indices of the points no other point dominates (another point dominates i when it is <= in x
/// and in y and < in one of them), ordered by x, then y. Points with a NaN coordinate are left out.
std::vector<int> paretoFront(const std::vector<double>& x, const std::vector<double>& y);

/// One line saying what a plan does, e.g. "3b g128 gptq, 2 rules, 40 overrides, 1 expert dropped";
/// "–" for no plan, "invalid plan" when it does not parse.
QString planSummary(const QString& planJson);

class ResultsModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { LabelColumn, PlanColumn, BitsColumn, SizeColumn, PerplexityColumn, KldColumn, SameTopColumn,
                  ParetoColumn, FirstTaskColumn };
    enum Role { SortRole = Qt::UserRole + 1 }; ///< numbers as doubles (NaN sorts last)
    /// The quality measure of the Pareto front (lower is better in both).
    enum class Quality { Perplexity, Kld };

    /// The quality value of a run on an axis (NaN when not measured).
    static double quality(const RunResult& run, Quality axis);

    explicit ResultsModel(QObject* parent = nullptr);
    ~ResultsModel() override;

    const std::vector<RunResult>& runs() const { return m_runs; }
    const RunResult& run(int row) const { return m_runs.at(size_t(row)); }
    void setRuns(std::vector<RunResult> runs);
    void addRun(RunResult run);
    void removeRun(int row);
    void clear() { setRuns({}); }

    /// Task names over all runs, sorted.
    QStringList taskNames() const { return m_tasks; }
    /// Rows on the Pareto front of (model bytes, quality), by size ascending.
    std::vector<int> paretoRows() const { return m_front; }
    bool isOnFront(int row) const;
    void setQualityAxis(Quality axis);
    Quality qualityAxis() const { return m_quality; }
    /// Whether any run has a KL divergence (the KLD columns and axis are offered then).
    bool hasKld() const { return m_hasKld; }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

signals:
    void runsChanged();

private:
    void recompute();

    std::vector<RunResult> m_runs;
    QStringList m_tasks;
    std::vector<int> m_front;
    QStringList m_planSummaries; ///< per run
    Quality m_quality = Quality::Perplexity;
    bool m_hasKld = false;
};

} // namespace moewb
