"""Tab pages that scroll when the window is shorter than their content. GUI thread."""

from __future__ import annotations

from PyQt6.QtWidgets import QFrame, QScrollArea, QWidget


def scrolling(content: QWidget) -> QScrollArea:
    """``content`` in a frameless scroll area that asks for no height of its own: the
    window's minimum size no longer grows with the page."""
    area = QScrollArea()
    area.setObjectName("page")
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidgetResizable(True)
    area.setWidget(content)
    return area
