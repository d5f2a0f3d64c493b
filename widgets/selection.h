// SPDX-License-Identifier: MIT
// The one selection every view follows (linked selection): a decoder layer, optionally a routed
// expert of it, optionally one linear module. Views call select(); all of them redraw on changed().
// Besides it, a set of (layer, expert) cells picked in the routing heat map with ctrl/shift clicks
// (experts()), which the allocation editor applies bulk edits to ("give these experts 8 bits").
#pragma once

#include <QList>
#include <QObject>
#include <QPair>
#include <QString>

namespace moewb {

class Selection : public QObject {
    Q_OBJECT
public:
    explicit Selection(QObject* parent = nullptr);
    ~Selection() override;

    int layer() const { return m_layer; }   ///< -1: none
    int expert() const { return m_expert; } ///< routed expert of layer(), -1: none
    QString linear() const { return m_linear; } ///< tensor name without ".weight", empty: none

    /// Sets all three at once; emits changed() only when something differs.
    void select(int layer, int expert = -1, const QString& linear = QString());
    void clear() { select(-1); }

    /// The multi-selection of experts as (layer, expert), sorted, without duplicates.
    QList<QPair<int, int>> experts() const { return m_experts; }
    bool hasExpert(int layer, int expert) const;
    /// Replaces it (sorted and deduplicated here); emits expertsChanged() when it differs.
    void setExperts(QList<QPair<int, int>> experts);
    void toggleExpert(int layer, int expert);

signals:
    void changed();
    void expertsChanged();

private:
    int m_layer = -1;
    int m_expert = -1;
    QString m_linear;
    QList<QPair<int, int>> m_experts;
};

} // namespace moewb
