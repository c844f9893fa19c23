"""``make bench``: the local stack's speed as a user meets it, printed as numbers (never a pass/fail test).

From one run: the detector's figures (``vidmod.detector.bench``: decode-only limit, per-model time, end-to-end
real-time factor, false positives), then the whole stack — a 10-minute 720p upload until its review is visible
(real-time factor and its ratio to the decode-only limit measured in the same run), a burst of short uploads
until every one waits in review, 100 uploads held to 3 moderation slots (``bench_admission``), and the local
Lambda's invocation overhead cold and warm — and the cost of the crash-safe state (``bench_durability``): a
100 MB PutObject's latency and the stack's memory during a 2 GB upload — and the reviewer portal's video
latency while a submission is in flight (``bench_portal``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vidmod.cli import bench_admission, bench_durability, bench_portal
from vidmod.detector import bench as detector_bench
from vidmod.detector.analyze import decode_limit_seconds
from vidmod.detector.samples import sample_video_path
from vidmod.detector.synthetic import loop_video, make_test_video
from vidmod.emulator import lambda_service
from vidmod.emulator.stack import LocalStack, StackOptions
from vidmod.emulator.template import FunctionSpec

NOOP_HANDLER = "def lambda_handler(event, context):\n    return event\n"


def invocation_overhead(work: Path, warm_runs: int = 30) -> tuple[float, float]:
    """(cold, warm median) milliseconds an invocation costs beyond the handler's own duration."""
    code = work / "noop"
    code.mkdir()
    (code / "app.py").write_text(NOOP_HANDLER, encoding="utf-8")
    function = FunctionSpec("Noop", "bench-noop", "arn:aws:lambda:us-east-1:123456789012:function:bench-noop",
                            code, "app.lambda_handler", 10, 128, {})  # fmt: skip
    lambda_service.configure("http://127.0.0.1:1", "us-east-1", None)
    try:
        timings = []
        for _ in range(warm_runs + 1):
            started = time.perf_counter()
            lambda_service.invoke(function, {"n": 1})
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        lambda_service.shutdown()
    return timings[0], statistics.median(timings[1:])


def wait_for_reviews(stack: LocalStack, count: int, timeout: float) -> None:
    """Until ``count`` human loops are open (what a reviewer's queue shows)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if len(stack.a2i.list_open()) >= count:
            return
        time.sleep(0.2)
    raise TimeoutError(f"only {len(stack.a2i.list_open())} of {count} uploads reached review in {timeout:.0f} s")


def upload_to_review(work: Path, videos: list[Path], timeout: float) -> float:
    """A fresh local stack (the default template parameters, its state on disk as users run it); every video
    uploaded at once; seconds until all of them wait in review."""
    with LocalStack(StackOptions(state_dir=work / "state")) as stack:
        s3 = stack.client("s3")
        started = time.perf_counter()
        for index, video in enumerate(videos):
            s3.upload_file(str(video), stack.media_bucket, f"bench/{index:03d}-{video.name}")
        wait_for_reviews(stack, len(videos), timeout)
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vidmod.cli.bench", description=__doc__)
    parser.add_argument("--burst", type=int, default=30, help="short uploads in the burst (default 30)")
    parser.add_argument("--long-seconds", type=float, default=600, help="length of the long upload (default 600)")
    parser.add_argument("videos", nargs="*", help="more videos for the false-positive table")
    args = parser.parse_args(argv)
    console = Console()
    detector_bench.main(args.videos)
    with tempfile.TemporaryDirectory(prefix="vidmod-bench-") as tmp:
        work = Path(tmp)
        cold, warm = invocation_overhead(work)
        long_video = loop_video(sample_video_path("bigbuckbunny.mp4"), work / "long.mp4", args.long_seconds)
        decode_limit = decode_limit_seconds(long_video)
        long_wall = upload_to_review(work / "long", [long_video], timeout=args.long_seconds * 2)
        clips = [make_test_video(work / f"clip-{i:03d}.mp4", seconds=3, fps=24) for i in range(args.burst)]
        burst_wall = upload_to_review(work / "burst", clips, timeout=600)
        admission_wall, admission_peak, admission_reached = bench_admission.admission_burst(work)
        put_seconds = bench_durability.put_latency(work)
        rss_before, rss_growth, upload_seconds = bench_durability.upload_memory(work)
        (work / "portal").mkdir()
        media_idle, media_busy = bench_portal.media_latency(work / "portal")
    table = Table("measure", "value", title="vidmod local stack (upload → review visible in the reviewer's queue)")
    realtime = args.long_seconds / long_wall
    limit = args.long_seconds / decode_limit
    table.add_row(
        f"{args.long_seconds / 60:.0f}-minute 1280×720 H.264 upload → review",
        f"{long_wall:.1f} s = {realtime:.1f}× real time; decode-only limit {decode_limit:.1f} s = {limit:.1f}×; "
        f"ratio {realtime / limit:.2f} of the limit",
    )
    table.add_row(f"burst of {args.burst} short uploads (3 s, 320×240) → all in review", f"{burst_wall:.1f} s")
    table.add_row(
        "burst of 100 short uploads (1 s, 160×120), MaxConcurrentModerationJobs=3 → all in review",
        f"{admission_wall:.1f} s; at most {admission_peak} jobs at once; {admission_reached} of 100 reached review",
    )
    table.add_row("Lambda invocation overhead, cold start", f"{cold:.0f} ms")
    table.add_row("Lambda invocation overhead, warm (median of 30)", f"{warm:.1f} ms")
    table.add_row("PutObject of 100 MB, acknowledged once on disk (median of 5)", f"{put_seconds:.2f} s")
    table.add_row(
        "2 GB multipart upload: the stack's memory",
        f"+{rss_growth:.0f} MB at most (from {rss_before:.0f} MB), upload {upload_seconds:.1f} s",
    )
    table.add_row(
        "reviewer portal: 64 KiB video range request (median of 5)",
        f"{media_idle:.0f} ms idle; {media_busy:.0f} ms while another tab's submit is held 1 s",
    )
    console.print(table)


if __name__ == "__main__":
    main()
