"""The dark look: colours, palette and one style sheet. GUI thread."""

from __future__ import annotations

from PyQt6.QtGui import QColor, QFont, QPalette
from PyQt6.QtWidgets import QApplication

WINDOW = "#16181d"
PANEL = "#1e2128"
SUNKEN = "#111318"
RAISED = "#2a2e37"
BORDER = "#323743"
GRID = "#2b303a"
TEXT = "#e8eaef"
TEXT_DIM = "#8b92a1"
ACCENT = "#3fd0b4"      # waveforms, focus
ONSET = "#ffb347"       # onsets, playheads, capture
SELECTION = "#24544c"
METER_LOW = "#3fd0b4"
METER_MID = "#f2c14e"
METER_HIGH = "#ff5d5d"
DANGER = "#ff5d5d"

STYLE = f"""
QWidget {{ color: {TEXT}; font-size: 10pt; }}
QMainWindow, QDialog {{ background: {WINDOW}; }}
QToolTip {{ background: {RAISED}; color: {TEXT}; border: 1px solid {BORDER}; padding: 4px; }}
QGroupBox {{ border: 1px solid {BORDER}; border-radius: 6px; margin-top: 14px; padding: 8px 6px 6px 6px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 10px; padding: 0 4px; color: {TEXT_DIM};
                    font-size: 8.5pt; font-weight: 600; letter-spacing: 1px; }}
QLabel#sectionTitle {{ color: {TEXT_DIM}; font-size: 8.5pt; font-weight: 600; letter-spacing: 1px; }}
QLabel#dim {{ color: {TEXT_DIM}; }}
QLabel#matchInfo {{ color: {TEXT_DIM}; font-size: 9pt; }}
QPushButton, QToolButton {{ background: {RAISED}; border: 1px solid {BORDER}; border-radius: 5px;
                            padding: 5px 12px; }}
QPushButton:hover, QToolButton:hover {{ border-color: {ACCENT}; }}
QPushButton:pressed, QToolButton:pressed {{ background: {SUNKEN}; }}
QPushButton:disabled, QToolButton:disabled {{ color: #5a606c; border-color: {GRID}; }}
QPushButton:checked, QToolButton:checked {{ background: {SELECTION}; border-color: {ACCENT}; }}
QPushButton#capture {{ background: {ONSET}; color: #1b1407; border: none; font-weight: 700;
                       padding: 7px 18px; font-size: 10.5pt; }}
QPushButton#capture:hover {{ background: #ffc46e; }}
QPushButton#capture:pressed {{ background: #e09a36; }}
QComboBox, QSpinBox, QDoubleSpinBox, QLineEdit {{ background: {SUNKEN}; border: 1px solid {BORDER};
    border-radius: 5px; padding: 4px 8px; selection-background-color: {SELECTION}; }}
QComboBox:hover, QSpinBox:hover, QLineEdit:focus {{ border-color: {ACCENT}; }}
QComboBox QAbstractItemView {{ background: {PANEL}; border: 1px solid {BORDER};
                               selection-background-color: {SELECTION}; }}
QTableView, QListWidget, QListView, QTreeView {{ background: {PANEL}; alternate-background-color: #21252d;
    border: 1px solid {BORDER}; border-radius: 6px; gridline-color: {GRID};
    selection-background-color: {SELECTION}; selection-color: {TEXT}; outline: 0; }}
QTableView::item {{ padding: 0 6px; }}
QTableView:focus, QListWidget:focus {{ border-color: {ACCENT}; }}
QHeaderView::section {{ background: {PANEL}; color: {TEXT_DIM}; border: none;
    border-bottom: 1px solid {BORDER}; padding: 6px; font-size: 8.5pt; font-weight: 600; }}
QTabWidget::pane {{ border: 1px solid {BORDER}; border-radius: 6px; top: -1px; background: {PANEL}; }}
QTabWidget#views::pane {{ border: none; background: transparent; }}
QTabBar::tab {{ background: transparent; color: {TEXT_DIM}; padding: 7px 14px; border: none;
                border-bottom: 2px solid transparent; font-weight: 600; }}
QTabBar::tab:selected {{ color: {TEXT}; border-bottom: 2px solid {ACCENT}; }}
QTabBar::tab:hover {{ color: {TEXT}; }}
QSlider::groove:horizontal {{ height: 4px; background: {BORDER}; border-radius: 2px; }}
QSlider::sub-page:horizontal {{ background: {ACCENT}; border-radius: 2px; }}
QSlider::handle:horizontal {{ background: {TEXT}; width: 12px; height: 12px; margin: -5px 0;
                              border-radius: 6px; }}
QProgressBar {{ background: {SUNKEN}; border: 1px solid {BORDER}; border-radius: 5px; height: 14px;
                text-align: center; color: {TEXT}; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 4px; }}
QStatusBar {{ background: {SUNKEN}; color: {TEXT_DIM}; border-top: 1px solid {BORDER}; }}
QStatusBar QLabel {{ color: {TEXT_DIM}; padding: 0 10px; }}
QCheckBox::indicator {{ width: 14px; height: 14px; border: 1px solid {TEXT_DIM}; border-radius: 3px;
                        background: {SUNKEN}; }}
QCheckBox::indicator:checked {{ background: {ACCENT}; border-color: {ACCENT}; }}
QTreeView::indicator, QListView::indicator {{ width: 13px; height: 13px; border: 1px solid {TEXT_DIM};
                                              border-radius: 3px; background: {SUNKEN}; }}
QTreeView::indicator:checked, QListView::indicator:checked {{ background: {ACCENT};
                                                              border-color: {ACCENT}; }}
QSplitter::handle {{ background: {WINDOW}; }}
QScrollArea#page, QScrollArea#page > QWidget > QWidget {{ background: transparent; }}
QScrollBar:vertical {{ background: transparent; width: 10px; margin: 2px; }}
QScrollBar::handle:vertical {{ background: {BORDER}; border-radius: 4px; min-height: 24px; }}
QScrollBar::add-line, QScrollBar::sub-line {{ height: 0; width: 0; }}
QScrollBar:horizontal {{ background: transparent; height: 10px; margin: 2px; }}
QScrollBar::handle:horizontal {{ background: {BORDER}; border-radius: 4px; min-width: 24px; }}
"""


def apply(app: QApplication) -> None:
    """Fusion style, dark palette and the style sheet, on the whole application."""
    app.setStyle("Fusion")
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: WINDOW, QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: PANEL, QPalette.ColorRole.AlternateBase: "#21252d",
        QPalette.ColorRole.Text: TEXT, QPalette.ColorRole.Button: RAISED,
        QPalette.ColorRole.ButtonText: TEXT, QPalette.ColorRole.Highlight: SELECTION,
        QPalette.ColorRole.HighlightedText: TEXT, QPalette.ColorRole.ToolTipBase: RAISED,
        QPalette.ColorRole.ToolTipText: TEXT, QPalette.ColorRole.PlaceholderText: TEXT_DIM,
        QPalette.ColorRole.Link: ACCENT,
    }
    for role, color in roles.items():
        pal.setColor(role, QColor(color))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#5a606c"))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#5a606c"))
    app.setPalette(pal)
    font = QFont()
    font.setFamilies(["Inter", "Cantarell", "Noto Sans", "DejaVu Sans", "Segoe UI", "Helvetica"])
    font.setPointSizeF(10)
    app.setFont(font)
    app.setStyleSheet(STYLE)
