// SPDX-License-Identifier: MIT
#include "alloc/allocationeditor.h"

#include "alloc/allocationitemmodel.h"
#include "alloc/budgetgauge.h"
#include "alloc/planeditmodel.h"
#include "alloc/rulestablemodel.h"
#include "alloc/strategypanel.h"
#include "document.h"
#include "selection.h"

#include "moewb/core/error.h"

#include <QAction>
#include <QCheckBox>
#include <QComboBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QPushButton>
#include <QSplitter>
#include <QStyledItemDelegate>
#include <QTabWidget>
#include <QTableView>
#include <QToolBar>
#include <QToolButton>
#include <QTreeView>
#include <QUndoStack>
#include <QVBoxLayout>

namespace moewb {

namespace {

QString choiceText(int column, const QVariant& v)
{
    if (column == AllocationItemModel::BitsColumn && v.toInt() == 16)
        return QObject::tr("16 (bf16)");
    if (column == AllocationItemModel::GroupSizeColumn && v.toInt() < 0)
        return QObject::tr("row (-1)");
    if (column == AllocationItemModel::SymColumn)
        return v.toBool() ? QObject::tr("sym") : QObject::tr("asym");
    return v.toString();
}

/// Combo boxes with the column's choices (ChoicesRole) for the editable columns of the tree.
class ChoiceDelegate : public QStyledItemDelegate {
public:
    using QStyledItemDelegate::QStyledItemDelegate;
    QWidget* createEditor(QWidget* parent, const QStyleOptionViewItem& option, const QModelIndex& index) const override
    {
        const QVariantList choices = index.data(AllocationItemModel::ChoicesRole).toList();
        if (choices.isEmpty())
            return QStyledItemDelegate::createEditor(parent, option, index);
        auto* box = new QComboBox(parent);
        for (const QVariant& v : choices)
            box->addItem(choiceText(index.column(), v), v);
        return box;
    }
    void setEditorData(QWidget* editor, const QModelIndex& index) const override
    {
        if (auto* box = qobject_cast<QComboBox*>(editor)) {
            const QVariant v = index.data(Qt::EditRole);
            box->setCurrentIndex(v.isValid() ? std::max(0, box->findData(v)) : -1);
            return;
        }
        QStyledItemDelegate::setEditorData(editor, index);
    }
    void setModelData(QWidget* editor, QAbstractItemModel* model, const QModelIndex& index) const override
    {
        if (auto* box = qobject_cast<QComboBox*>(editor)) {
            if (box->currentIndex() >= 0)
                model->setData(index, box->currentData(), Qt::EditRole);
            return;
        }
        QStyledItemDelegate::setModelData(editor, model, index);
    }
};

/// The rules' regex column: the line edit turns red with the regex error while the text is invalid,
/// and an invalid regex is never committed.
class RegexDelegate : public QStyledItemDelegate {
public:
    using QStyledItemDelegate::QStyledItemDelegate;
    QWidget* createEditor(QWidget* parent, const QStyleOptionViewItem& option, const QModelIndex& index) const override
    {
        if (index.column() != RulesTableModel::MatchColumn)
            return QStyledItemDelegate::createEditor(parent, option, index);
        auto* edit = new QLineEdit(parent);
        QObject::connect(edit, &QLineEdit::textChanged, edit, [edit](const QString& text) {
            const QString err = regexError(text);
            edit->setStyleSheet(err.isEmpty() ? QString() : QStringLiteral("background: #f8c8c8;"));
            edit->setToolTip(err);
        });
        return edit;
    }
    void setModelData(QWidget* editor, QAbstractItemModel* model, const QModelIndex& index) const override
    {
        if (auto* edit = qobject_cast<QLineEdit*>(editor); edit && index.column() == RulesTableModel::MatchColumn) {
            if (!regexError(edit->text()).isEmpty())
                return; // keep the old regex
            model->setData(index, edit->text(), Qt::EditRole);
            return;
        }
        QStyledItemDelegate::setModelData(editor, model, index);
    }
    static QString regexError(const QString& text)
    {
        PlanRule r;
        r.match = text.toStdString();
        try {
            PlanEditModel::checkRule(r);
        } catch (const Error& e) {
            return QString::fromStdString(e.what());
        }
        return {};
    }
};

} // namespace

AllocationEditor::AllocationEditor(Document* document, PlanEditModel* plan, QWidget* parent)
    : QWidget(parent)
    , m_document(document)
    , m_plan(plan)
    , m_items(new AllocationItemModel(plan, this))
    , m_rules(new RulesTableModel(plan, this))
    , m_gauge(new BudgetGauge(plan, this))
    , m_strategy(new StrategyPanel(plan, AllocBackend{}, this))
    , m_tree(new QTreeView(this))
    , m_rulesView(new QTableView(this))
    , m_tabs(new QTabWidget(this))
    , m_heatmapLabel(new QLabel(this))
    , m_error(new QLabel(this))
{
    // No shortcuts here: the main window's Edit menu owns Ctrl+Z / Ctrl+Shift+Z (two actions with
    // one shortcut in a window would be ambiguous and neither would fire).
    m_undo = m_plan->undoStack()->createUndoAction(this, tr("&Undo"));
    m_redo = m_plan->undoStack()->createRedoAction(this, tr("&Redo"));
    m_open = new QAction(tr("Open &Plan…"), this);
    m_save = new QAction(tr("&Save Plan"), this);
    m_saveAs = new QAction(tr("Save Plan &As…"), this);
    connect(m_open, &QAction::triggered, this, [this] {
        const QString path = QFileDialog::getOpenFileName(this, tr("Open plan"), m_plan->planPath(),
                                                          tr("Plans (*.json);;All files (*)"));
        if (!path.isEmpty())
            openPlan(path);
    });
    auto saveAs = [this] {
        const QString path = QFileDialog::getSaveFileName(this, tr("Save plan"), m_plan->planPath(),
                                                          tr("Plans (*.json);;All files (*)"));
        if (!path.isEmpty())
            savePlan(path);
    };
    connect(m_save, &QAction::triggered, this, [this, saveAs] {
        if (m_plan->planPath().isEmpty())
            saveAs();
        else
            savePlan(m_plan->planPath());
    });
    connect(m_saveAs, &QAction::triggered, this, saveAs);

    // tool bars: undo/redo, file and the heat-map selection; below, bulk edits of the selected rows
    auto* bar = new QToolBar(this);
    bar->setToolButtonStyle(Qt::ToolButtonTextOnly);
    bar->addAction(m_undo);
    bar->addAction(m_redo);
    bar->addSeparator();
    bar->addAction(m_open);
    bar->addAction(m_save);
    bar->addSeparator();
    auto* bulkBar = new QToolBar(this);
    bulkBar->setToolButtonStyle(Qt::ToolButtonTextOnly);
    bulkBar->addWidget(new QLabel(tr("Selected rows:"), bulkBar));
    for (int bits : {2, 3, 4, 8, 16}) {
        QAction* a = bulkBar->addAction(bits == 16 ? tr("bf16") : tr("%1b").arg(bits));
        a->setToolTip(tr("Give every linear under the selected rows %1 bits").arg(bits));
        connect(a, &QAction::triggered, this, [this, bits] { setBitsOnSelectedRows(bits); });
    }
    auto* more = new QToolButton(bulkBar);
    more->setText(tr("Set"));
    more->setPopupMode(QToolButton::InstantPopup);
    more->setToolTip(tr("Group size, symmetry or method for every linear under the selected rows"));
    auto* moreMenu = new QMenu(more);
    auto addSetting = [this, moreMenu](const QString& text, QuantSettings set) {
        connect(moreMenu->addAction(text), &QAction::triggered, this,
                [this, text, set] { setSettingsOnSelectedRows(set, text); });
    };
    for (int g : {32, 64, 128, -1}) {
        QuantSettings q;
        q.groupSize = g;
        addSetting(g < 0 ? tr("Group size: row (-1)") : tr("Group size %1").arg(g), q);
    }
    moreMenu->addSeparator();
    for (bool sym : {true, false}) {
        QuantSettings q;
        q.sym = sym;
        addSetting(sym ? tr("Symmetric") : tr("Asymmetric"), q);
    }
    moreMenu->addSeparator();
    for (const char* m : {"gptq", "rtn"}) {
        QuantSettings q;
        q.method = std::string(m);
        addSetting(tr("Method %1").arg(QLatin1String(m)), q);
    }
    more->setMenu(moreMenu);
    bulkBar->addWidget(more);
    QAction* clear = bulkBar->addAction(tr("Reset"));
    clear->setToolTip(tr("Remove the hand-tuned overrides under the selected rows (back to defaults and rules)"));
    connect(clear, &QAction::triggered, this, [this] { clearOverridesOnSelectedRows(); });
    bar->addWidget(m_heatmapLabel);
    auto* heatBits = new QToolButton(bar);
    heatBits->setText(tr("Give bits"));
    heatBits->setPopupMode(QToolButton::InstantPopup);
    auto* menu = new QMenu(heatBits);
    for (int bits : {2, 3, 4, 8, 16})
        connect(menu->addAction(bits == 16 ? tr("bf16 (16 bits)") : tr("%1 bits").arg(bits)), &QAction::triggered, this,
                [this, bits] { setBitsOnHeatmapSelection(bits); });
    menu->addSeparator();
    connect(menu->addAction(tr("Drop these experts")), &QAction::triggered, this,
            [this] { setDroppedOnHeatmapSelection(true); });
    connect(menu->addAction(tr("Keep these experts")), &QAction::triggered, this,
            [this] { setDroppedOnHeatmapSelection(false); });
    heatBits->setMenu(menu);
    heatBits->setToolTip(tr("Apply to the experts selected in the routing heat map (ctrl/shift+click there)"));
    bar->addWidget(heatBits);

    m_tree->setModel(m_items);
    m_tree->setItemDelegate(new ChoiceDelegate(m_tree));
    m_tree->setSelectionMode(QAbstractItemView::ExtendedSelection);
    m_tree->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_tree->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::EditKeyPressed
                            | QAbstractItemView::SelectedClicked);
    m_tree->setUniformRowHeights(true); // 47k rows
    m_tree->setAlternatingRowColors(false);
    m_tree->header()->setStretchLastSection(false);
    m_tree->header()->setSectionResizeMode(AllocationItemModel::NameColumn, QHeaderView::Stretch);
    m_tree->setColumnWidth(AllocationItemModel::BitsColumn, 70);
    m_tree->setColumnWidth(AllocationItemModel::GroupSizeColumn, 60);
    m_tree->setColumnWidth(AllocationItemModel::SymColumn, 55);
    m_tree->setColumnWidth(AllocationItemModel::MethodColumn, 60);
    m_tree->setColumnWidth(AllocationItemModel::ShapeColumn, 95);
    m_tree->setColumnWidth(AllocationItemModel::BytesColumn, 85);

    m_tabs->addTab(m_strategy, tr("Strategy"));
    m_tabs->addTab(makeRulesTab(), tr("Rules"));
    m_tabs->addTab(makeDefaultsTab(), tr("Defaults"));

    m_error->setStyleSheet(QStringLiteral("color: #c81e1e;"));
    m_error->setWordWrap(true);
    m_error->setVisible(false);

    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(m_tree);
    split->addWidget(m_tabs);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    auto* lay = new QVBoxLayout(this);
    lay->setContentsMargins(2, 2, 2, 2);
    lay->addWidget(m_gauge);
    lay->addWidget(bar);
    lay->addWidget(bulkBar);
    lay->addWidget(m_error);
    lay->addWidget(split, 1);

    connect(m_strategy, &StrategyPanel::targetChanged, m_gauge, &BudgetGauge::setTarget);
    connect(m_items, &AllocationItemModel::editFailed, this, [this](const QString& msg) { attempt([msg] {
                throw InputError(msg.toStdString());
            }); });
    connect(m_rules, &RulesTableModel::editFailed, this, [this](const QString& msg) { attempt([msg] {
                throw InputError(msg.toStdString());
            }); });
    connect(m_document, &Document::modelChanged, this, &AllocationEditor::followModel);
    connect(m_document, &Document::statsChanged, this, &AllocationEditor::followCostTable);
    connect(m_document, &Document::costTableChanged, this, &AllocationEditor::followCostTable);
    connect(m_document->selection(), &Selection::changed, this, &AllocationEditor::followSelection);
    connect(m_document->selection(), &Selection::expertsChanged, this, &AllocationEditor::updateHeatmapLabel);
    connect(m_tree->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            &AllocationEditor::onCurrentRowChanged);
    if (m_plan->modelConfig())
        m_followed = m_document->config(); // already set up by its owner
    else
        followModel();
    followCostTable();
    updateHeatmapLabel();
}

void AllocationEditor::setCostTableMeasuring(bool measuring)
{
    m_costMeasuring = measuring;
    followCostTable();
}

void AllocationEditor::followCostTable()
{
    const CalibStats* stats = m_document->stats();
    QString missing;
    if (!stats || !stats->hasFisher())
        missing = tr("needs calibration with the Fisher cost (calibrate --fisher)");
    else if (!m_document->costTable())
        missing = m_costMeasuring ? tr("measuring… (Jobs panel)")
                                  : tr("not measured yet for these statistics (Jobs → Measure predicted cost)");
    m_gauge->setCostTable(m_document->costTable(), missing);
}

AllocationEditor::~AllocationEditor() = default;

void AllocationEditor::setBackend(AllocBackend backend)
{
    m_strategy->setBackend(std::move(backend));
}

QWidget* AllocationEditor::makeRulesTab()
{
    auto* w = new QWidget(this);
    m_rulesView->setModel(m_rules);
    m_rulesView->setItemDelegate(new RegexDelegate(m_rulesView));
    m_rulesView->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_rulesView->setSelectionMode(QAbstractItemView::SingleSelection);
    m_rulesView->horizontalHeader()->setSectionResizeMode(RulesTableModel::MatchColumn, QHeaderView::Stretch);
    auto* add = new QPushButton(tr("Add"), w);
    auto* remove = new QPushButton(tr("Remove"), w);
    auto* up = new QPushButton(tr("Up"), w);
    auto* down = new QPushButton(tr("Down"), w);
    auto current = [this] { return m_rulesView->currentIndex().isValid() ? m_rulesView->currentIndex().row() : -1; };
    connect(add, &QPushButton::clicked, this, [this, current] {
        PlanRule r;
        r.match = R"(.*\.experts\.\d+\.down_proj)";
        r.set.bits = 4;
        const int at = current() < 0 ? -1 : current() + 1;
        if (attempt([&] { m_plan->insertRule(at, r); })) {
            const int row = at < 0 ? m_rules->rowCount() - 1 : at;
            m_rulesView->setCurrentIndex(m_rules->index(row, RulesTableModel::MatchColumn));
            m_rulesView->edit(m_rulesView->currentIndex());
        }
    });
    connect(remove, &QPushButton::clicked, this, [this, current] {
        if (current() >= 0)
            attempt([&] { m_plan->removeRule(current()); });
    });
    auto move = [this, current](int delta) {
        const int from = current(), to = from + delta;
        if (from < 0 || to < 0 || to >= m_rules->rowCount())
            return;
        if (attempt([&] { m_plan->moveRule(from, to); }))
            m_rulesView->setCurrentIndex(m_rules->index(to, 0));
    };
    connect(up, &QPushButton::clicked, this, [move] { move(-1); });
    connect(down, &QPushButton::clicked, this, [move] { move(+1); });
    auto* buttons = new QHBoxLayout;
    for (QPushButton* b : {add, remove, up, down})
        buttons->addWidget(b);
    buttons->addStretch(1);
    auto* lay = new QVBoxLayout(w);
    lay->addWidget(m_rulesView, 1);
    lay->addLayout(buttons);
    return w;
}

QWidget* AllocationEditor::makeDefaultsTab()
{
    auto* w = new QWidget(this);
    auto* bits = new QComboBox(w);
    for (int b : {2, 3, 4, 8, 16})
        bits->addItem(choiceText(AllocationItemModel::BitsColumn, b), b);
    auto* group = new QComboBox(w);
    for (int g : {32, 64, 128, -1})
        group->addItem(choiceText(AllocationItemModel::GroupSizeColumn, g), g);
    auto* sym = new QCheckBox(tr("symmetric"), w);
    auto* method = new QComboBox(w);
    method->addItems({QStringLiteral("gptq"), QStringLiteral("rtn")});
    auto* actOrder = new QCheckBox(tr("act order (desc_act)"), w);
    auto* form = new QFormLayout(w);
    form->addRow(tr("Bits"), bits);
    form->addRow(tr("Group size"), group);
    form->addRow(QString(), sym);
    form->addRow(tr("Method"), method);
    form->addRow(QString(), actOrder);
    form->addRow(new QLabel(tr("Every linear starts here; rules then overrides refine it."), w));
    auto refresh = [=] {
        const PlanDefaults& d = m_plan->plan().defaults;
        const QSignalBlocker b1(bits), b2(group), b3(sym), b4(method), b5(actOrder);
        bits->setCurrentIndex(bits->findData(int(d.bits)));
        group->setCurrentIndex(group->findData(int(d.groupSize)));
        sym->setChecked(d.sym);
        method->setCurrentText(QString::fromStdString(d.method));
        actOrder->setChecked(d.actOrder);
    };
    auto apply = [=] {
        PlanDefaults d = m_plan->plan().defaults;
        d.bits = bits->currentData().toInt();
        d.groupSize = group->currentData().toInt();
        d.sym = sym->isChecked();
        d.method = method->currentText().toStdString();
        d.actOrder = actOrder->isChecked();
        if (!attempt([&] { m_plan->setDefaults(d); }))
            refresh();
    };
    connect(bits, qOverload<int>(&QComboBox::activated), this, apply);
    connect(group, qOverload<int>(&QComboBox::activated), this, apply);
    connect(method, qOverload<int>(&QComboBox::activated), this, apply);
    connect(sym, &QCheckBox::clicked, this, apply);
    connect(actOrder, &QCheckBox::clicked, this, apply);
    connect(m_plan, &PlanEditModel::planChanged, w, refresh);
    refresh();
    return w;
}

bool AllocationEditor::attempt(const std::function<void()>& edit)
{
    try {
        edit();
    } catch (const Error& e) {
        m_lastError = QString::fromStdString(e.what());
        m_error->setText(m_lastError);
        m_error->setVisible(true);
        emit message(m_lastError);
        return false;
    }
    m_lastError.clear();
    m_error->setVisible(false);
    return true;
}

void AllocationEditor::followModel()
{
    const ModelConfig* cfg = m_document->config();
    if (!m_followModel || cfg == m_followed)
        return;
    m_followed = cfg;
    // The document's config is immutable while open; a copy keeps the plan independent of it.
    m_plan->setModelConfig(cfg ? std::make_shared<const ModelConfig>(*cfg) : nullptr);
}

void AllocationEditor::followSelection()
{
    if (m_following)
        return;
    const Selection* s = m_document->selection();
    const QModelIndex idx = m_items->indexFor(s->layer(), s->expert(), s->linear());
    if (!idx.isValid() || idx == m_tree->currentIndex().siblingAtColumn(0))
        return;
    m_following = true;
    m_tree->selectionModel()->setCurrentIndex(idx, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    m_tree->scrollTo(idx);
    m_following = false;
}

void AllocationEditor::onCurrentRowChanged()
{
    if (m_following)
        return;
    const QModelIndex idx = m_tree->currentIndex();
    if (!idx.isValid())
        return;
    m_following = true;
    m_document->selection()->select(idx.data(AllocationItemModel::LayerRole).toInt(),
                                    idx.data(AllocationItemModel::ExpertRole).toInt(),
                                    idx.data(AllocationItemModel::LinearRole).toString());
    m_following = false;
}

void AllocationEditor::updateHeatmapLabel()
{
    const int n = int(m_document->selection()->experts().size());
    m_heatmapLabel->setText(n == 0 ? tr("Heat map: no experts selected") : (n == 1 ? tr("Heat map: 1 expert") : tr("Heat map: %1 experts").arg(n)));
}

bool AllocationEditor::setBitsOnSelectedRows(int64_t bits)
{
    const std::vector<int> entries = m_items->entriesOf(m_tree->selectionModel()->selectedRows());
    if (entries.empty())
        return attempt([] { throw InputError("allocation editor", "select rows in the tree first"); });
    return attempt([&] { m_plan->setBits(entries, bits); });
}

bool AllocationEditor::setSettingsOnSelectedRows(const QuantSettings& set, const QString& what)
{
    const std::vector<int> entries = m_items->entriesOf(m_tree->selectionModel()->selectedRows());
    if (entries.empty())
        return attempt([] { throw InputError("allocation editor", "select rows in the tree first"); });
    const QString text = entries.size() == 1 ? tr("%1 on 1 linear").arg(what)
                                             : tr("%1 on %2 linears").arg(what).arg(entries.size());
    return attempt([&] { m_plan->setSettings(entries, set, text); });
}

bool AllocationEditor::clearOverridesOnSelectedRows()
{
    const std::vector<int> entries = m_items->entriesOf(m_tree->selectionModel()->selectedRows());
    return attempt([&] { m_plan->clearOverrides(entries); });
}

bool AllocationEditor::setBitsOnHeatmapSelection(int64_t bits)
{
    const QList<QPair<int, int>> experts = m_document->selection()->experts();
    QModelIndexList rows;
    for (const auto& [layer, expert] : experts)
        rows << m_items->indexForExpert(layer, expert);
    const std::vector<int> entries = m_items->entriesOf(rows);
    if (entries.empty())
        return attempt([] {
            throw InputError("allocation editor", "select experts in the routing heat map first (ctrl/shift+click)");
        });
    QuantSettings s;
    s.bits = bits;
    return attempt([&] {
        m_plan->setSettings(entries, s,
                            (experts.size() == 1 ? tr("Set %1 bits on 1 expert of the heat map").arg(bits)
                                                 : tr("Set %1 bits on %2 experts of the heat map").arg(bits).arg(experts.size())));
    });
}

bool AllocationEditor::setDroppedOnHeatmapSelection(bool dropped)
{
    std::vector<DroppedExpert> experts;
    for (const auto& [layer, expert] : m_document->selection()->experts())
        experts.push_back({layer, expert});
    if (experts.empty())
        return attempt([] {
            throw InputError("allocation editor", "select experts in the routing heat map first (ctrl/shift+click)");
        });
    return attempt([&] { m_plan->setExpertsDropped(experts, dropped); });
}

bool AllocationEditor::openPlan(const QString& path)
{
    return attempt([&] { m_plan->loadPlanFile(path); });
}

bool AllocationEditor::savePlan(const QString& path)
{
    return attempt([&] { m_plan->savePlanFile(path); });
}

} // namespace moewb
