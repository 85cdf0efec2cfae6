"""The window's library browser (ui.browser_panel) against a real catalog of Debian's
Hydrogen samples, through the real window and ``NullHost`` (real library thread and
catalog, no audio device: auditions are recorded)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PyQt6.QtCore import QPoint, Qt, QUrl

from app.catalog import Catalog
from app.paths import CATALOG_FILENAME
from tests.test_browse import indexed, library  # noqa: F401 - fixtures
from ui.browser_model import BrowserModel


@pytest.fixture
def window(qtbot, library, tmp_path):  # noqa: F811
    from tests.null_host import null_window

    with null_window(qtbot, library[1], tmp_path / "config") as win:
        win.show()
        win.views.setCurrentWidget(win.browser_panel)
        panel = win.browser_panel
        qtbot.waitUntil(lambda: panel.model.rowCount() == 23, timeout=20000)
        yield win


def shown_names(panel) -> list[str]:
    return [panel.model.index(r, BrowserModel.COL_NAME).data() for r in range(panel.model.rowCount())]


def facet_item(panel, facet: str, label: str):
    for i in range(panel.facets.topLevelItemCount()):
        top = panel.facets.topLevelItem(i)
        if top.text(0).lower() == facet:
            for j in range(top.childCount()):
                if top.child(j).text(0) == label:
                    return top.child(j)
    raise AssertionError(f"no {facet} facet {label!r}")


def click_item(qtbot, tree, item) -> None:
    tree.scrollToItem(item)
    rect = tree.visualItemRect(item)
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_search_per_keystroke_facets_sort_and_audition(qtbot, window):
    panel, host = window.browser_panel, window.host
    answers = []
    panel.results_changed.connect(answers.append)
    qtbot.keyClicks(panel.search, "bd")
    assert len(answers) == 2                     # one answer per keystroke
    kicks = shown_names(panel)
    assert "PowR_BD_1.flac" in kicks and all(
        "kick" in panel.model.index(r, BrowserModel.COL_TAGS).data() or "BD" in kicks[r]
        for r in range(len(kicks)))
    panel.search.setText("snare")
    snares = shown_names(panel)            # by name, and what the audio model calls snare
    assert {"PowR_SN_1.flac", "stick-rim-9.flac", "snare-opaque-normal-mic-rimshot2.flac"} <= set(snares)
    panel.search.setText("snare -rim")
    assert shown_names(panel) == [n for n in snares if "rim" not in n.lower()]
    panel.search.clear()
    assert panel.facet_counts("folder") == {"samples/Electro": 16, "samples/Acoustic": 7}

    # a facet click filters; the other facets count what is left
    click_item(qtbot, panel.facets, facet_item(panel, "folder", "samples/Acoustic"))
    assert panel.model.rowCount() == 7
    assert panel.facet_counts("tags")["snare"] == 7   # every Acoustic file, by its name
    assert facet_item(panel, "folder", "samples/Acoustic").checkState(0) == Qt.CheckState.Checked
    click_item(qtbot, panel.facets, facet_item(panel, "folder", "samples/Acoustic"))
    assert panel.model.rowCount() == 23

    # a header click sorts (longest first on the second click)
    header = panel.view.horizontalHeader()
    for _ in range(2):
        x = header.sectionViewportPosition(BrowserModel.COL_LENGTH) + 5
        qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                         pos=QPoint(x, header.height() // 2))
    lengths = [panel.snapshot.duration[panel.model.snapshot_row(r)] for r in range(23)]
    assert panel.sort == ("length", True) and lengths == sorted(lengths, reverse=True)

    # arrows audition the row they reach; Space plays the current one again
    panel.view.setFocus()
    panel.view.setCurrentIndex(panel.model.index(0, BrowserModel.COL_NAME))
    qtbot.keyClick(panel.view, Qt.Key.Key_Down)
    qtbot.keyClick(panel.view, Qt.Key.Key_Space)
    played = [args[0] for name, args in host.calls if name == "audition"]
    assert played == [panel.model.path(0), panel.model.path(1), panel.model.path(1)]

    # rows drag out as files; "Find similar" fills the suggestions through the host
    mime = panel.model.mimeData([panel.model.index(1, 0), panel.model.index(2, 3)])
    assert mime.urls() == [QUrl.fromLocalFile(panel.model.path(1)),
                           QUrl.fromLocalFile(panel.model.path(2))]
    menu = panel.context_menu(1)
    next(a for a in menu.actions() if a.text() == "Find similar").trigger()
    assert ("request_search", (panel.model.path(1),)) in host.calls
    qtbot.waitUntil(lambda: window.model.rowCount() > 0, timeout=30000)
    assert window.model.suggestion(0).path == panel.model.path(1)


def test_favourites_tags_and_collections_reach_the_catalog(qtbot, window, library):  # noqa: F811
    panel = window.browser_panel
    catalog_path = Path(library[1]) / CATALOG_FILENAME
    panel.search.setText("hh")
    rows = panel.model.rowCount()
    assert rows >= 4
    ids = [panel.model.file_id(r) for r in range(2)]

    # the star toggles a favourite, in the view at once and in the catalog
    star = panel.model.index(0, BrowserModel.COL_FAV)
    qtbot.mouseClick(panel.view.viewport(), Qt.MouseButton.LeftButton,
                     pos=panel.view.visualRect(star).center())
    assert star.data() == "★"

    def favourites():
        with Catalog(catalog_path) as catalog:
            return catalog.favourites()
    qtbot.waitUntil(lambda: favourites() == {ids[0]}, timeout=10000)
    panel.favourites_only.setChecked(True)
    assert panel.model.rowCount() == 1
    panel.favourites_only.setChecked(False)

    # a tag on two selected rows at once
    panel.view.selectRow(0)
    panel.view.selectionModel().select(
        panel.model.index(1, 0), panel.view.selectionModel().SelectionFlag.Select
        | panel.view.selectionModel().SelectionFlag.Rows)
    assert panel.view.selected_rows() == [0, 1]
    menu = panel.context_menu(0)
    add = next(a for a in menu.actions() if a.text() == "Add tag (2)").menu()
    next(a for a in add.actions() if a.text() == "percussion").trigger()

    def tagged():
        with Catalog(catalog_path) as catalog:
            found = catalog.tags(ids)
        return all("percussion" in {t.tag for t in found[i]} for i in ids)
    qtbot.waitUntil(tagged, timeout=10000)
    qtbot.waitUntil(lambda: panel.facet_counts("tags").get("percussion") == 2, timeout=10000)

    # a new collection from the selection; it drags out as its files
    panel.create_collection("Hat picks", [0, 1])
    qtbot.waitUntil(lambda: panel.collection is not None and panel.model.rowCount() == 2,
                    timeout=10000)
    item = panel.collections.currentItem()
    assert item.text() == "Hat picks  (2)"
    mime = panel.collections.mimeData([item])
    with Catalog(catalog_path) as catalog:
        [row] = catalog.collections()
        expected = [catalog.file(i).path for i in catalog.collection_file_ids(row.id)]
    assert (row.name, row.size) == ("Hat picks", 2)
    assert sorted(u.toLocalFile() for u in mime.urls()) == sorted(expected)
    panel.choose_collection(None)
    assert panel.model.rowCount() == rows


def test_the_browser_shows_name_tags_kind_bpm_key_and_length_at_1280(qtbot, window):
    window.resize(1280, 800)
    qtbot.waitUntil(lambda: window.width() == 1280)
    view = window.browser_panel.view
    for col in (BrowserModel.COL_NAME, BrowserModel.COL_TAGS, BrowserModel.COL_KIND,
                BrowserModel.COL_BPM, BrowserModel.COL_KEY, BrowserModel.COL_LENGTH):
        right = view.columnViewportPosition(col) + view.columnWidth(col)
        assert 0 <= view.columnViewportPosition(col) and right <= view.viewport().width(), col
    kind = window.browser_panel.model.index(0, BrowserModel.COL_KIND).data()
    assert view.fontMetrics().horizontalAdvance(kind) + 12 <= view.columnWidth(BrowserModel.COL_KIND)


def contrast(a, b) -> float:
    """WCAG contrast ratio of two QColors."""
    def lum(c):
        ch = [v / 255 for v in (c.red(), c.green(), c.blue())]
        r, g, b = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in ch]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_facet_boxes_stand_out_and_the_footer_shows_no_zero_ms(qtbot, window):
    from PyQt6.QtGui import QColor
    from PyQt6.QtWidgets import QApplication
    from ui import theme
    theme.apply(QApplication.instance())
    panel = window.browser_panel
    qtbot.wait(50)
    tree = panel.facets
    item = facet_item(panel, "folder", "samples/Acoustic")
    tree.scrollToItem(item)
    rect = tree.visualItemRect(item)
    image = tree.viewport().grab().toImage()
    background = QColor(theme.PANEL)
    box = [image.pixelColor(x, y) for x in range(rect.left(), rect.left() + 20)
           for y in range(rect.top(), rect.bottom())]
    assert max(contrast(c, background) for c in box) >= 3.0      # WCAG for controls
    assert not panel.count.text().endswith(" 0 ms")
