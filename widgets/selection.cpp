// SPDX-License-Identifier: MIT
#include "selection.h"

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

} // namespace moewb
