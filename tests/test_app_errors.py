"""A problem the user can fix, raised anywhere under a page, reaches the page as an error box
(app.py's router catches ``UserError``), never as a traceback."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("page", ["ui/runs.py", "ui/embeddings.py", "ui/unlabeled.py"])  # pages that read it
def test_a_run_store_that_is_not_a_database_is_an_error_box(isolated_env, page):
    runs = isolated_env / "runs"
    runs.mkdir()
    (runs / "runs.db").write_text("these are my notes, not a database\n")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run().switch_page(page).run()
    assert not at.exception
    assert any("is not a readable run store" in e.value and "runs.db" in e.value for e in at.error)


def test_the_page_works_again_once_the_file_is_moved_aside(isolated_env):
    runs = isolated_env / "runs"
    runs.mkdir()
    (runs / "runs.db").write_text("not a database")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run().switch_page("ui/runs.py").run()
    assert at.error
    (runs / "runs.db").rename(runs / "notes.txt")
    at.switch_page("ui/runs.py").run()
    assert not at.exception and not at.error
