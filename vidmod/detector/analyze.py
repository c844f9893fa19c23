"""Decode a video sequentially and run the detector on sampled frames, overlapping the two.

A decode thread feeds a small bounded queue, so memory stays flat however long the video is, and the
decoder works while the models run. Only what Rekognition accepts is analysed (H.264 in MP4/MOV/AVI, ≤ 6 h),
and a video that cannot be decoded to its end fails: footage nobody looked at must never be approved.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av

from vidmod.detector.models import Detector, NudityDetector

_END = object()
SUPPORTED_CODECS = {"h264"}
# libavformat demuxer names: "mov,mp4,m4a,3gp,3g2,mj2" reads MP4 and MOV; Rekognition's API also lists AVI.
SUPPORTED_FORMATS = {"mov,mp4,m4a,3gp,3g2,mj2", "avi"}
SUPPORTED = "H.264 video in an MP4, MOV or AVI container"
MAX_DURATION_MILLIS = 6 * 3600 * 1000  # Rekognition stored video: 6 h
COMPLETE_FRACTION = 0.9  # decoding must reach 90 % of the container's duration

Progress = Callable[[int, int, int], None]  # (frames analysed, frames expected, duration millis)


class NotAVideo(Exception):
    """The file cannot be analysed; the message is what the job's StatusMessage says."""

    def __init__(self, message: str, metadata: dict | None = None):
        super().__init__(message)
        self.metadata = metadata


class UnsupportedVideo(NotAVideo):
    """A video, but not one Rekognition accepts (codec or container)."""


class TruncatedVideo(NotAVideo):
    """Decoding stopped before the end the container announces."""


class VideoTooLong(NotAVideo):
    """Longer than Rekognition's stored-video limit."""


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


def check_supported(container: av.container.InputContainer, metadata: dict, max_duration_millis: int) -> None:
    """Refuse what Rekognition refuses, naming what was found and what is accepted."""
    codec, demuxer = metadata["Codec"], container.format.name
    if codec not in SUPPORTED_CODECS or demuxer not in SUPPORTED_FORMATS:
        raise UnsupportedVideo(
            f"Unsupported video: codec '{codec}', container '{metadata['Format']}'. Supported: {SUPPORTED}.",
            metadata,
        )
    if metadata["DurationMillis"] > max_duration_millis:
        raise VideoTooLong(
            f"VideoTooLarge: the video lasts {_hms(metadata['DurationMillis'])}; "
            f"the limit is {_hms(max_duration_millis)} (Rekognition: 6 hours).",
            metadata,
        )


def _hms(millis: int) -> str:
    seconds = round(millis / 1000)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def analyze(
    path: Path,
    fps: float | None = None,
    detector: Detector | None = None,
    progress: Progress | None = None,
    max_duration_millis: int = MAX_DURATION_MILLIS,
) -> Analysis:
    """Sample ``fps`` frames per second (on a time grid) and collect Rekognition-shaped detections."""
    fps = fps or default_fps()
    detector = detector or NudityDetector()
    container, stream, metadata = probe(Path(path))
    try:
        check_supported(container, metadata, max_duration_millis)
    except NotAVideo:
        container.close()
        raise
    analysis = Analysis(metadata)
    frames: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()
    failure: list[BaseException] = []
    start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
    reached = [0.0]  # seconds of video decoded (last frame's end)

    def put(item: object) -> bool:
        while not stop.is_set():  # never block forever: the consumer may have given up
            try:
                frames.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        next_sample = 0.0
        step = 1 / metadata["FrameRate"] if metadata["FrameRate"] else 0.0
        try:
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if stop.is_set():
                    return
                if frame.time is None:
                    continue
                reached[0] = max(reached[0], frame.time - start + step)
                if frame.time + 1e-6 < next_sample:
                    continue
                if not put((round(frame.time * 1000), frame.to_ndarray(format="rgb24"))):
                    return
                next_sample = (math.floor(frame.time * fps + 1e-6) + 1) / fps  # a grid: no drift at 29.97 fps
        except Exception as error:  # reported by the consumer, never lost in this thread
            failure.append(error)
        finally:
            container.close()
            put(_END)

    thread = threading.Thread(target=decode, name="vidmod-decode", daemon=True)
    thread.start()
    expected = max(1, math.ceil(metadata["DurationMillis"] / 1000 * fps - 1e-6))
    try:
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
                progress(analysis.frames, max(expected, analysis.frames), metadata["DurationMillis"])
    finally:
        stop.set()  # a failing detector must not leave the decoder blocked on a full queue
        thread.join()
    _check_complete(analysis, failure, reached[0])
    return analysis


def _check_complete(analysis: Analysis, failure: list[BaseException], reached: float) -> None:
    """Fail unless the whole video was decoded: a partial look must not pass as a clean result."""
    duration = analysis.metadata["DurationMillis"] / 1000
    if analysis.frames == 0:
        detail = f": {failure[0]}" if failure else "."
        raise NotAVideo(f"The video has no decodable frames{detail}", analysis.metadata)
    if failure:
        raise TruncatedVideo(
            f"Decoding failed after {min(reached, duration):.1f} of {duration:.1f} s ({failure[0]}); "
            "the file is truncated or corrupt.",
            analysis.metadata,
        )
    if duration and reached < COMPLETE_FRACTION * duration:
        raise TruncatedVideo(
            f"Decoded {reached:.1f} of {duration:.1f} s; the file is truncated or corrupt.", analysis.metadata
        )
