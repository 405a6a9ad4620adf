"""A module bound with OnFirstUse is imported by the first read of one of its
attributes, once, however many threads read it then."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

from chalicelib.first_use import OnFirstUse

# Slow to import, so that a second thread reads while the first imports it.
SLOW_MODULE = "import time\ntime.sleep(0.2)\nIMPORTS = []\nIMPORTS.append(1)\nVALUE = 'read'\n"


def test_the_module_is_imported_by_the_first_read_and_once_for_threads_reading_at_once(
    tmp_path, monkeypatch
):
    (tmp_path / "slow_to_import.py").write_text(SLOW_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "slow_to_import", raising=False)
    bound = OnFirstUse("slow_to_import")
    assert "slow_to_import" not in sys.modules
    with ThreadPoolExecutor(max_workers=4) as threads:
        read = list(threads.map(lambda _: bound.VALUE, range(4)))
    assert read == ["read"] * 4
    assert sys.modules["slow_to_import"].IMPORTS == [1]
    assert bound.__name__ == "slow_to_import"
    del sys.modules["slow_to_import"]
