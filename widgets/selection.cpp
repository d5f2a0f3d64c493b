// SPDX-License-Identifier: MIT
#include "selection.h"

#include <algorithm>

namespace moewb {

Selection::Selection(QObject* parent)
    : QObject(parent)
{
}

Selection::~Selection() = default;

void Selection::select(int layer, int expert, const QString& linear)
{
    if (layer < 0) {
        expert = -1;
    }
    if (layer == m_layer && expert == m_expert && linear == m_linear)
        return;
    m_layer = layer;
    m_expert = expert;
    m_linear = linear;
    emit changed();
}

bool Selection::hasExpert(int layer, int expert) const
{
    return std::binary_search(m_experts.begin(), m_experts.end(), qMakePair(layer, expert));
}

void Selection::setExperts(QList<QPair<int, int>> experts)
{
    std::sort(experts.begin(), experts.end());
    experts.erase(std::unique(experts.begin(), experts.end()), experts.end());
    if (experts == m_experts)
        return;
    m_experts = std::move(experts);
    emit expertsChanged();
}

void Selection::toggleExpert(int layer, int expert)
{
    QList<QPair<int, int>> e = m_experts;
    const auto it = std::lower_bound(e.begin(), e.end(), qMakePair(layer, expert));
    if (it != e.end() && *it == qMakePair(layer, expert))
        e.erase(it);
    else
        e.insert(it, qMakePair(layer, expert));
    setExperts(std::move(e));
}

} // namespace moewb
