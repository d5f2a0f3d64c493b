// SPDX-License-Identifier: MIT
#include "views/modeltreeview.h"

#include "document.h"
#include "models/modeltreemodel.h"
#include "selection.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLineEdit>
#include <QSortFilterProxyModel>
#include <QTreeView>
#include <QVBoxLayout>

namespace moewb {

ModelTreeView::ModelTreeView(Document* document, QWidget* parent)
    : QWidget(parent)
    , m_document(document)
    , m_model(new ModelTreeModel(this))
    , m_proxy(new QSortFilterProxyModel(this))
    , m_filter(new QLineEdit(this))
    , m_metric(new QComboBox(this))
    , m_tree(new QTreeView(this))
{
    m_proxy->setSourceModel(m_model);
    m_proxy->setRecursiveFilteringEnabled(true);
    m_proxy->setAutoAcceptChildRows(true);
    m_proxy->setFilterCaseSensitivity(Qt::CaseInsensitive);
    m_proxy->setFilterRole(ModelTreeModel::FilterRole);
    m_proxy->setSortRole(ModelTreeModel::SortRole);

    m_filter->setPlaceholderText(tr("Filter (e.g. \"expert 3\", \"down\", \"layers.2.\")"));
    m_filter->setClearButtonEnabled(true);
    m_metric->addItem(tr("Outlier score"), int(TreeMetric::OutlierScore));
    m_metric->addItem(tr("Tokens"), int(TreeMetric::Tokens));
    m_metric->setToolTip(tr("Last column: weight outlier score (max over the subtree) or tokens routed"));

    m_tree->setModel(m_proxy);
    m_tree->setSortingEnabled(true);
    m_tree->sortByColumn(ModelTreeModel::NameColumn, Qt::AscendingOrder);
    m_tree->setUniformRowHeights(true);
    m_tree->setAlternatingRowColors(true);
    m_tree->header()->setSectionResizeMode(QHeaderView::ResizeToContents);

    auto* row = new QHBoxLayout;
    row->addWidget(m_filter, 1);
    row->addWidget(m_metric);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(2, 2, 2, 2);
    layout->addLayout(row);
    layout->addWidget(m_tree, 1);

    connect(m_filter, &QLineEdit::textChanged, this, &ModelTreeView::setFilterText);
    connect(m_metric, qOverload<int>(&QComboBox::currentIndexChanged), this,
            [this] { m_model->setMetric(TreeMetric(m_metric->currentData().toInt())); });
    // as in the outlier table: clicks and keyboard moves select, focus alone does not
    connect(m_tree->selectionModel(), &QItemSelectionModel::currentChanged, this,
            [this](const QModelIndex& current, const QModelIndex& previous) {
                if (previous.isValid() && current.isValid())
                    onCurrentChanged();
            });
    connect(m_tree, &QAbstractItemView::clicked, this, &ModelTreeView::onCurrentChanged);
    connect(m_document, &Document::modelChanged, this, &ModelTreeView::rebuild);
    connect(m_document, &Document::statsChanged, this, &ModelTreeView::rebuild);
    connect(m_document->selection(), &Selection::changed, this, &ModelTreeView::followSelection);
}

ModelTreeView::~ModelTreeView() = default;

void ModelTreeView::setFilterText(const QString& text)
{
    if (m_filter->text() != text)
        m_filter->setText(text);
    m_proxy->setFilterFixedString(text);
    if (!text.isEmpty())
        m_tree->expandAll();
}

void ModelTreeView::rebuild()
{
    m_model->setSource(m_document->config(), m_document->stats());
}

void ModelTreeView::followSelection()
{
    const Selection* s = m_document->selection();
    const QModelIndex source = m_model->indexFor(s->layer(), s->expert(), s->linear());
    const QModelIndex index = m_proxy->mapFromSource(source);
    if (index == m_tree->currentIndex())
        return;
    m_following = true;
    if (index.isValid()) {
        m_tree->scrollTo(index);
        m_tree->setCurrentIndex(index);
    } else {
        m_tree->clearSelection();
        m_tree->setCurrentIndex({});
    }
    m_following = false;
}

void ModelTreeView::onCurrentChanged()
{
    if (m_following)
        return;
    const QModelIndex index = m_tree->currentIndex();
    if (!index.isValid())
        return;
    m_document->selection()->select(index.data(ModelTreeModel::LayerRole).toInt(),
                                    index.data(ModelTreeModel::ExpertRole).toInt(),
                                    index.data(ModelTreeModel::LinearRole).toString());
}

} // namespace moewb
