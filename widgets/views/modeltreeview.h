// SPDX-License-Identifier: MIT
// The model tree dock: a filter box, the metric shown in the last column and the tree itself.
// Clicking a row selects its layer / expert / linear; the tree follows selections made elsewhere.
#pragma once

#include <QWidget>

class QComboBox;
class QLineEdit;
class QSortFilterProxyModel;
class QTreeView;

namespace moewb {

class Document;
class ModelTreeModel;

class ModelTreeView : public QWidget {
    Q_OBJECT
public:
    explicit ModelTreeView(Document* document, QWidget* parent = nullptr);
    ~ModelTreeView() override;

    ModelTreeModel* model() const { return m_model; }
    QSortFilterProxyModel* proxy() const { return m_proxy; }
    QTreeView* tree() const { return m_tree; }
    void setFilterText(const QString& text);

private:
    void rebuild();
    void followSelection();
    void onCurrentChanged();

    Document* m_document;
    ModelTreeModel* m_model;
    QSortFilterProxyModel* m_proxy;
    QLineEdit* m_filter;
    QComboBox* m_metric;
    QTreeView* m_tree;
    bool m_following = false;
};

} // namespace moewb
