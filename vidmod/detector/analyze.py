"""Decode a video sequentially and run the detector on sampled frames, overlapping the two.

A decode thread feeds a small bounded queue, so memory stays flat however long the video is, and the
decoder works while the models run.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av

from vidmod.detector.models import Detector, NudityDetector

_END = object()


class NotAVideo(Exception):
    """The file cannot be decoded as a video."""


@dataclass
class Analysis:
    metadata: dict
    detections: list[dict] = field(default_factory=list)
    frames: int = 0


def default_fps() -> float:
    return float(os.environ.get("VIDMOD_DETECTOR_FPS", "1"))


def probe(path: Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream, dict]:
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError) as error:
        raise NotAVideo(f"The file is not a video this detector can decode: {error}") from error
    if not container.streams.video:
        container.close()
        raise NotAVideo("The file has no video stream.")
    stream = container.streams.video[0]
    duration = (
        float(stream.duration * stream.time_base) if stream.duration else (container.duration or 0) / av.time_base
    )
    metadata = {
        "Codec": stream.codec_context.name,
        "DurationMillis": int(duration * 1000),
        "Format": container.format.long_name,
        "FrameRate": float(stream.average_rate or 0),
        "FrameHeight": stream.codec_context.height,
        "FrameWidth": stream.codec_context.width,
        "ColorRange": "FULL" if "j" in (stream.codec_context.pix_fmt or "") else "LIMITED",
    }
    return container, stream, metadata


def analyze(
    path: Path,
    fps: float | None = None,
    detector: Detector | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Analysis:
    """Sample ``fps`` frames per second (by timestamp) and collect Rekognition-shaped detections."""
    fps = fps or default_fps()
    detector = detector or NudityDetector()
    container, stream, metadata = probe(Path(path))
    analysis = Analysis(metadata)
    frames: queue.Queue = queue.Queue(maxsize=4)
    failure: list[BaseException] = []

    def decode() -> None:
        next_sample = 0.0
        try:
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if frame.time is None or frame.time + 1e-6 < next_sample:
                    continue
                frames.put((int(frame.time * 1000), frame.to_ndarray(format="rgb24")))
                next_sample = frame.time + 1.0 / fps
        except av.FFmpegError as error:
            failure.append(NotAVideo(f"The video could not be decoded: {error}"))
        finally:
            container.close()
            frames.put(_END)

    thread = threading.Thread(target=decode, name="vidmod-decode", daemon=True)
    thread.start()
    expected = max(1, int(metadata["DurationMillis"] / 1000 * fps))
    while (item := frames.get()) is not _END:
        timestamp, image = item
        analysis.frames += 1
        for label, confidence in detector.detect(image).items():
            analysis.detections.append(
                {
                    "Timestamp": timestamp,
                    "ModerationLabel": {
                        "Confidence": confidence,
                        "Name": label.name,
                        "ParentName": label.parent,
                        "TaxonomyLevel": label.level,
                    },
                }
            )
        if progress:
            progress(analysis.frames, expected)
    thread.join()
    if failure and analysis.frames == 0:
        raise failure[0]
    if analysis.frames == 0:
        raise NotAVideo("The video has no decodable frames.")
    return analysis
