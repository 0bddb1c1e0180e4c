// SPDX-License-Identifier: GPL-3.0-or-later
// SourcesPane: the session's sources in prompt order — name, kind, tokens, an enable box each —
// with Add files / Add folder, Move up / down, Remove, and the context gauge. Files and folders
// dropped on it are added.
// Owns: its tree and buttons. Promises: addPaths() is the one way a dialog, a drop or a test adds
// sources (it emits addRequested once per call with the local paths); toggling, moving and
// removing emit requests and do not change the rows until setSources() brings the stored result.
// Never talks to the service.
#pragma once

#include <QStringList>
#include <QWidget>

#include <vector>

#include "storage/catalog.h"

class QTreeWidget;
class QPushButton;

namespace folio::ui {

class ContextGauge;

class SourcesPane : public QWidget {
    Q_OBJECT
  public:
    explicit SourcesPane(QWidget* parent = nullptr);

    void setSources(const std::vector<storage::SourceRow>& sources, int64_t contextTokens);
    void clear();
    void addPaths(const QStringList& paths);
    void chooseFiles();   // the Add files dialog
    void chooseFolder();  // the Add folder dialog

    int64_t currentSourceId() const;  // 0: none
    QTreeWidget* tree() const { return tree_; }
    ContextGauge* gauge() const { return gauge_; }
    int sourceCount() const;

  signals:
    void addRequested(const QStringList& paths);
    void enableRequested(int64_t sourceId, bool enabled);
    void moveRequested(int64_t sourceId, int64_t position);
    void removeRequested(int64_t sourceId);
    void sourceActivated(int64_t sourceId);

  protected:
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

  private:
    void updateButtons();
    void moveCurrent(int delta);

    QTreeWidget* tree_;
    ContextGauge* gauge_;
    QPushButton* up_;
    QPushButton* down_;
    QPushButton* remove_;
    bool filling_ = false;
};

}  // namespace folio::ui
