// SPDX-License-Identifier: MIT
// The one selection every view follows (linked selection): a decoder layer, optionally a routed
// expert of it, optionally one linear module. Views call select(); all of them redraw on changed().
#pragma once

#include <QObject>
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

signals:
    void changed();

private:
    int m_layer = -1;
    int m_expert = -1;
    QString m_linear;
};

} // namespace moewb
