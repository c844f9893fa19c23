"""Where GetContentModeration pages live: ``<results prefix>pages/NNNNN.json``, numbered from 1.

store_labels writes page N; evaluate_rules reads pages 1..N. Full label lists can exceed Step Functions'
256 KiB payload limit, so the workflow carries only this prefix and the page count.
"""

from __future__ import annotations


def page_key(prefix: str, number: int) -> str:
    return f"{prefix}pages/{number:05d}.json"


def page_keys(prefix: str, pages: int) -> list[str]:
    return [page_key(prefix, number) for number in range(1, pages + 1)]
