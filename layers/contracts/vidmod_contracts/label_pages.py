"""Where GetContentModeration pages live: ``<results prefix>pages/NNNNN.json``, numbered from 1.

store_labels writes page N; evaluate_rules reads pages 1..N. Full label lists can exceed Step Functions'
256 KiB payload limit, so the workflow carries only this prefix and the page count.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

# Pages are read in parallel: one by one, a job near the page budget could outlast evaluate_rules' timeout.
# Below botocore's default pool of 10 connections, so no read waits for a connection.
READ_WORKERS = 8


def page_key(prefix: str, number: int) -> str:
    return f"{prefix}pages/{number:05d}.json"


def page_keys(prefix: str, pages: int) -> list[str]:
    return [page_key(prefix, number) for number in range(1, pages + 1)]


def read_pages(s3, bucket: str, prefix: str, pages: int, workers: int = READ_WORKERS) -> list[dict]:
    """Pages 1..N as stored, in page order; a missing page raises S3's error (NoSuchKey) for the first one
    missing, so nothing is ever decided on part of the labels."""

    def read(key: str) -> dict:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    keys = page_keys(prefix, pages)
    if len(keys) <= 1:
        return [read(key) for key in keys]
    with ThreadPoolExecutor(max_workers=min(workers, len(keys)), thread_name_prefix="label-page") as pool:
        return list(pool.map(read, keys))
