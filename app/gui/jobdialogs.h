// SPDX-License-Identifier: MIT
// The small dialogs of the Jobs menu: each collects the options of one job (the same options as the
// matching CLI subcommand, with the demo-friendly defaults of scripts/demo.sh) and remembers the
// last values in QSettings.
#pragma once

#include "enginejobs.h"

#include <QDialog>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QFormLayout;
class QLabel;
class QLineEdit;
class QSpinBox;

namespace moewb::gui {

/// A line edit with a "…" button that opens a file/directory chooser.
class PathEdit : public QWidget {
    Q_OBJECT
public:
    enum Mode { OpenFile, OpenFiles, SaveFile, Directory, SaveDirectory };
    PathEdit(Mode mode, const QString& filter, QWidget* parent = nullptr);
    QString text() const;
    void setText(const QString& text);
    /// OpenFiles: paths separated by ';'.
    QStringList paths() const;

private:
    Mode m_mode;
    QString m_filter;
    QLineEdit* m_edit;
};

class CalibrateDialog : public QDialog {
    Q_OBJECT
public:
    CalibrateDialog(const QString& modelDir, const QString& defaultOut, QWidget* parent = nullptr);
    CalibrateSettings settings() const;
    void accept() override;

private:
    QString m_modelDir;
    PathEdit* m_data;
    QSpinBox* m_samples;
    QSpinBox* m_seqLen;
    QCheckBox* m_random;
    QSpinBox* m_seed;
    QCheckBox* m_fisher;
    PathEdit* m_out;
};

class StrategyDialog : public QDialog {
    Q_OBJECT
public:
    explicit StrategyDialog(bool haveStats, QWidget* parent = nullptr);
    StrategySettings settings() const;
    void accept() override;

private:
    QComboBox* m_strategy;
    QDoubleSpinBox* m_bits;
    QComboBox* m_groupSize;
    QCheckBox* m_asym;
    QComboBox* m_method;
    QComboBox* m_runtime; ///< data: gptq | vllm | gguf
};

class QuantizeDialog : public QDialog {
    Q_OBJECT
public:
    /// exportMode: the Export… entry (GPTQ or GGUF) rather than Quantize… (fake-quant to evaluate).
    QuantizeDialog(const QString& modelDir, const QString& defaultOut, bool exportMode, QWidget* parent = nullptr);
    QuantizeSettings settings() const;
    void accept() override;

private:
    QString m_modelDir;
    bool m_export;
    QComboBox* m_format;
    PathEdit* m_out;
    QCheckBox* m_force;
    PathEdit* m_calib;
    QSpinBox* m_samples;
    QSpinBox* m_seqLen;
    QDoubleSpinBox* m_damp;
    QComboBox* m_balance;      ///< expert balancing: off | next-choices | all-tokens
    QLabel* m_balanceHelp;     ///< one line on what the chosen balancing does
};

class EvaluateDialog : public QDialog {
    Q_OBJECT
public:
    EvaluateDialog(const QString& defaultModel, QWidget* parent = nullptr);
    EvaluateSettings settings() const;
    void accept() override;

private:
    PathEdit* m_model;
    QLineEdit* m_label;
    PathEdit* m_ppl;
    PathEdit* m_tasks;
    QSpinBox* m_limit;
    QSpinBox* m_ctx;
};

} // namespace moewb::gui
