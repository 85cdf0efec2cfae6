"""A search by file answers in two steps: the index's order at once, then the re-ranked list
(app.query.search's ``unranked``), through the window's library thread and the CLI's path."""

from __future__ import annotations

from app.library import Library
from app.library_tasks import LibraryThread
from app.query import FILE_RERANK_DEPTH
from app.scanner import Scanner
from tests.conftest import wait_for
from tests.test_scanner import write_hits


def test_the_index_order_comes_first_and_the_reranked_list_replaces_it(tmp_path,
                                                                      isolated_library_dir):
    root = tmp_path / "samples"
    paths = write_hits(root, 6)
    with Library(isolated_library_dir) as library:
        Scanner(library, workers=1).scan([root])
        assert library.reranker is not None
        seen = []
        final = library.search_file(paths[2], k=4, unranked=seen.append)
        assert len(seen) == 1 and len(seen[0]) == 4
        query = library.embed_file(paths[2])
        index_order = library.search_vectors(query.vectors, max(4, FILE_RERANK_DEPTH))
        assert [r.file.path for r in seen[0]] == [r.file.path for r in index_order[:4]]
        assert final[0].file.path == str(paths[2])
        # bare vectors are not re-ranked: nothing comes first
        library.search_vectors(query.vectors, 4, unranked=seen.append)
        assert len(seen) == 1

    errors: list[str] = []
    published = []
    thread = LibraryThread(isolated_library_dir, errors.append)
    try:
        thread.search_file(paths[2], 4, published.append)
        assert wait_for(lambda: len(published) == 2, timeout=60)
    finally:
        thread.close()
    assert errors == []
    first, last = published
    assert (first.stage, last.stage) == ("index", "final") and first.seq < last.seq
    assert first.reason == last.reason == f"file {paths[2].name}"
    assert [s.path for s in first.suggestions] == [r.file.path for r in seen[0]]
    assert last.suggestions[0].path == str(paths[2])
