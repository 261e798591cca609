"""Many users at once, small: bench/many_users.py with 5 protocol sessions and 3 Chromium pages at
once against one app server while a run trains, then 12 sessions opened and closed. Every session
must see no exception, error box, console error or failed step. Slow (about 2-3 minutes on a
2-core CPU: it trains a small run first): `make test-all`."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"


@pytest.mark.slow
def test_many_sessions_at_once_see_no_error():
    sys.path.insert(0, str(ROOT / "bench"))
    import many_users

    pages = 3 if Path(CHROMIUM).exists() else 0
    figures = many_users.run(sessions=5, pages=pages, churned=12)
    errors = {f.name: f.detail for f in figures if f.name.endswith("errors")}
    assert len(errors) == (3 if pages else 2), [f.name for f in figures]
    for figure in figures:
        if figure.name.endswith("errors"):
            assert figure.measured == 0 and figure.met, f"{figure.name}: {figure.detail}"
