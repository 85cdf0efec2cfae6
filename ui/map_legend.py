"""The similarity map's legend: a coloured dot and 'tag (count)' per colour, one a line, in
a column beside the plot, never over the points. GUI thread."""

from __future__ import annotations

import html

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QLabel, QSizePolicy


class MapLegend(QLabel):
    """``set_entries([(name, count, colour), …])`` shows them in that order."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("dim")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Ignored)
        self._entries: list[tuple[str, int, str]] = []

    def set_entries(self, entries: list[tuple[str, int, str]]) -> None:
        self._entries = list(entries)
        self.setText("<br>".join(
            f"<span style='color:{colour}; font-size:13pt'>●</span>&nbsp;"
            f"{html.escape(name)} ({count})" for name, count, colour in self._entries))

    def entries(self) -> list[tuple[str, int, str]]:
        """What the legend shows: (name, count, colour) per colour of the map."""
        return list(self._entries)
