"""Imported first by each bench script, which runs as ``python bench/<name>.py``.

Python then puts bench/ itself on ``sys.path``: this takes it off again (bench/http.py would
shadow the standard library's ``http``) and puts the repository root there instead, so that
the scripts import ``bench.common`` and the app's modules. Keep it above the ``bench`` imports
and import nothing before it that imports ``http`` (urllib.request, http.client, ...).
"""

import sys
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))
