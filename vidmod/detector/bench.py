"""``python -m vidmod.detector.bench`` (``make bench``): how fast, and how often wrong, the local detector is.

Prints, in one run: decode-only speed, each model's time per frame, end-to-end analysis speed as a multiple
of real time for a generated 60 s 720p H.264 video at 1 frame/s, and the false-positive rate on the shipped
real sample videos (they contain no nudity, so any label ≥ the review threshold is a false positive).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import av
import numpy as np
from rich.console import Console
from rich.table import Table

from vidmod.detector.analyze import analyze
from vidmod.detector.models import NudityDetector
from vidmod.detector.samples import sample_video_path
from vidmod.detector.testing import make_test_video

REVIEW_THRESHOLD = 50.0


def decode_seconds(path: Path, fps: float = 1.0) -> tuple[float, int]:
    started, frames, next_sample = time.perf_counter(), 0, 0.0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if frame.time is not None and frame.time + 1e-6 >= next_sample:
                frame.to_ndarray(format="rgb24")
                frames += 1
                next_sample = frame.time + 1 / fps
    return time.perf_counter() - started, frames


def per_frame_ms(function, frames: list[np.ndarray]) -> float:
    function(frames[0])  # load the model first
    started = time.perf_counter()
    for frame in frames:
        function(frame)
    return 1000 * (time.perf_counter() - started) / len(frames)


def main() -> None:
    console = Console()
    detector = NudityDetector()
    with tempfile.TemporaryDirectory() as tmp:
        with console.status("generating a 60 s 720p H.264 video…"):
            video = make_test_video(Path(tmp) / "bench-720p.mp4", seconds=60, fps=30, size=(1280, 720))
        decode, sampled = decode_seconds(video)
        with av.open(str(video)) as container:
            frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(20), container.decode(video=0), strict=False)]
        nudenet_ms = per_frame_ms(detector.parts, frames)
        nsfw_ms = per_frame_ms(detector.frame_score, frames)
        started = time.perf_counter()
        result = analyze(video, fps=1, detector=detector)
        end_to_end = time.perf_counter() - started
    duration = result.metadata["DurationMillis"] / 1000
    table = Table("measure", "value", title="vidmod local detector (60 s 720p H.264, 1 frame/s)")
    table.add_row(
        "decode only (sampled 1 frame/s)", f"{decode:.2f} s for {sampled} frames ({duration / decode:.0f}× real time)"
    )
    table.add_row("nudenet 320n per frame", f"{nudenet_ms:.1f} ms")
    table.add_row("open-nsfw per frame", f"{nsfw_ms:.1f} ms")
    table.add_row("end to end (decode ∥ detect)", f"{end_to_end:.2f} s = {duration / end_to_end:.1f}× real time")
    console.print(table)

    fp = Table(
        "sample video",
        "frames analysed",
        f"frames flagged ≥ {REVIEW_THRESHOLD:.0f}",
        "false-positive rate",
        title="false positives on real videos with no nudity",
    )
    for name in ("bigbuckbunny.mp4", "bikes.mp4"):
        path = sample_video_path(name)
        analysis = analyze(path, fps=5, detector=detector)
        flagged = {
            d["Timestamp"] for d in analysis.detections if d["ModerationLabel"]["Confidence"] >= REVIEW_THRESHOLD
        }
        fp.add_row(name, str(analysis.frames), str(len(flagged)), f"{len(flagged) / max(analysis.frames, 1):.1%}")
    console.print(fp)


if __name__ == "__main__":
    main()
