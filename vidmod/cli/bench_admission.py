"""Admission control under a burst, as numbers (part of ``make bench``; never a pass/fail test).

100 short uploads at once against a local stack whose MaxConcurrentModerationJobs is 3: seconds until every
one waits in review, the most Rekognition jobs the local detector ever had in progress at once (from its job
records), and how many uploads reached review (none may be lost).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vidmod.detector.synthetic import make_test_video
from vidmod.emulator.rekognition import peak_concurrency
from vidmod.emulator.stack import LocalStack, StackOptions


def admission_burst(work: Path, uploads: int = 100, slots: int = 3, timeout: float = 1200) -> tuple[float, int, int]:
    """(seconds until all in review, most jobs in progress at once, uploads that reached review)."""
    clip = make_test_video(work / "short.mp4", seconds=1, size=(160, 120)).read_bytes()
    options = StackOptions(state_dir=work / "admission-state", parameters={"MaxConcurrentModerationJobs": str(slots)})
    with LocalStack(options) as stack:
        s3 = stack.client("s3")
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            for index in range(uploads):
                pool.submit(s3.put_object, Bucket=stack.media_bucket, Key=f"burst/{index:03d}.mp4", Body=clip)
        deadline = started + timeout
        while len(stack.a2i.list_open()) < uploads and time.perf_counter() < deadline:
            time.sleep(0.5)
        seconds = time.perf_counter() - started
        reached = len(stack.a2i.list_open())
        return seconds, peak_concurrency(list(stack.detector.jobs.values())), reached


if __name__ == "__main__":  # the figure alone: python -m vidmod.cli.bench_admission
    import tempfile

    with tempfile.TemporaryDirectory(prefix="vidmod-bench-") as tmp:
        seconds, most, reached = admission_burst(Path(tmp))
        print(f"100 uploads, 3 slots: {seconds:.1f} s to review; at most {most} jobs at once; {reached} in review")
