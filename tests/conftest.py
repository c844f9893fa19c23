"""Suite-wide: the longest test files start first.

``make test`` runs on two workers, a file at a time each (pytest-xdist ``loadfile``). A file of 80 s handed out
last keeps one worker busy while the other idles; started first, it runs beside the many short files.
"""

from __future__ import annotations

LONGEST_FIRST = (  # measured with --durations; each takes 40 s or more
    "tests/emulator/test_crash_safety.py",
    "tests/emulator/test_crash_burst.py",
    "tests/workflow/test_scenarios.py",
    "tests/workflow/test_review_timeout.py",
    "tests/workflow/test_restart.py",
    "tests/ui/test_consensus_portal.py",
    "tests/ui/test_metrics_page.py",
    "tests/workflow/test_audit_sampling.py",
)


def pytest_collection_modifyitems(session, config, items) -> None:
    def rank(item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: every file keeps its own order
