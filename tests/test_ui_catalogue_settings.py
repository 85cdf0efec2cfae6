"""The Settings panel's Catalogue group, a real widget against a real PostgreSQL 18 +
pgvector server (``bench.harness.pg_server``): Test connection answers in plain words from a
background thread (connected, read-only role, no such database, nothing listening, a
password in the address refused without connecting); Use remembers the address (never a
password) and the library opens on it at the next start."""

from __future__ import annotations

import pytest

from app.library import Library, catalog_address

TIMEOUT_MS = 30000


@pytest.fixture(scope="module")
def server():
    from bench.harness.pg_server import PgServer
    pg = PgServer()
    try:
        yield pg
    finally:
        pg.close()


@pytest.fixture
def panel(qtbot, tmp_path, monkeypatch):
    from tests.null_host import NullHost
    from ui.settings import SettingsPanel, SettingsStore
    monkeypatch.delenv("SAMPLESCOUT_CATALOG", raising=False)
    host = NullHost(tmp_path / "lib")
    widget = SettingsPanel(host, SettingsStore(tmp_path / "cfg"))
    qtbot.addWidget(widget)
    try:
        yield widget
    finally:
        widget.catalogue.wait()
        host.close()


def tried(qtbot, group, address: str) -> tuple[bool, str]:
    group.address.setText(address)
    with qtbot.waitSignal(group.tested, timeout=TIMEOUT_MS) as answer:
        group.test_button.click()
        assert group.result.text() == "Testing the connection…"   # the GUI did not wait
    return tuple(answer.args)


def test_connection_tests_answer_in_plain_words(qtbot, panel, server):
    group = panel.catalogue
    assert group.kind.currentData() == "local" and not group.address.isEnabled()
    group.kind.setCurrentIndex(group.kind.findData("shared"))
    assert group.address.isEnabled() and group.test_button.isEnabled()

    address = server.create_database("settings")
    ok, words = tried(qtbot, group, address)
    assert ok and words.startswith("Connected to postgres@127.0.0.1")
    assert "pgvector 0.8" in words and "may add samples" in words
    assert "read-write role" in group.result.toolTip()             # doctor's own line

    with server.connect("settings") as conn:
        conn.execute("CREATE ROLE browser LOGIN")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO browser")
    ok, words = tried(qtbot, group, address.replace("postgres@", "browser@"))
    assert ok and "read-only" in words and "not add or change" in words
    assert "GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO browser" in words
    with server.connect("settings") as conn:
        conn.execute("GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO browser")
    ok, words = tried(qtbot, group, address.replace("postgres@", "browser@"))
    assert ok and "read-only" in words and "SEQUENCES" not in words

    ok, words = tried(qtbot, group, server.address("no_such_library"))
    assert not ok and "no database named no_such_library" in words and "createdb" in words

    ok, words = tried(qtbot, group, "postgresql://postgres@127.0.0.1:1/studio")
    assert not ok and "Nothing answers at 127.0.0.1:1" in words

    ok, words = tried(qtbot, group, address.replace("postgres@", "postgres:secret@"))
    assert not ok and "holds a password" in words and ".pgpass" in words


def test_use_remembers_the_address_for_the_next_start_but_never_a_password(qtbot, panel, server,
                                                                           tmp_path):
    group = panel.catalogue
    library_dir = tmp_path / "lib"
    address = server.create_database("next_start")
    group.kind.setCurrentIndex(group.kind.findData("shared"))

    group.address.setText(address.replace("postgres@", "postgres:secret@"))
    group.use_button.click()
    assert "holds a password" in group.result.text() and ".pgpass" in group.result.text()
    assert catalog_address(library_dir) is None                      # nothing was saved

    group.address.setText(address)
    with qtbot.waitSignal(group.chosen, timeout=TIMEOUT_MS):
        group.use_button.click()
    assert "Restart Sample Scout" in group.result.text()
    assert "applied when Sample Scout restarts" in group.note.text()
    assert catalog_address(library_dir) == address
    with Library(library_dir) as library:                             # the next start
        assert library.shared and library.live_shared

    group.kind.setCurrentIndex(group.kind.findData("local"))
    group.use_button.click()
    assert catalog_address(library_dir) is None
    assert "this machine's own catalogue" in group.result.text()
