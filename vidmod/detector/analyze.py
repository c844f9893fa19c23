"""Decode a video sequentially and run the detector on sampled frames, overlapping the two.

A decode thread feeds a small bounded queue, so memory stays flat however long the video is, and the
decoder works while the models run. The decoder is given only the packets the sampled frames need
(``FrameSampler``): the frames it skips are never the ones sampled, so the result is the same as decoding
everything. A detector that declares itself ``thread_safe`` is given two frames at once (the other core is
used whenever the decoder is ahead); detections still come out in timestamp order. Only what Rekognition
accepts is analysed (H.264 in MP4/MOV/AVI, ≤ 6 h), and a video that cannot be decoded to its end fails:
footage nobody looked at must never be approved.
"""

from __future__ import annotations

import bisect
import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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


# ---------------------------------------------------------------- which packets the sampled frames need
GRID_MARGIN = 1e-3  # s: a packet this near a grid point is always decoded (the sampler's own tolerance is 1e-6 s)
MAX_PENDING_PACKETS = 256  # packets held back (then decoded anyway) while waiting to see if a GOP needs them
MAX_PENDING_BYTES = 32 << 20
# NAL unit types a packet may hold and still be left undecoded: slices and slice partitions (1–5), SEI (6),
# access unit delimiter (9), filler (12). Parameter sets (7, 8, 13, 15) and end of sequence/stream are decoded.
_DROPPABLE_NALS = frozenset({1, 2, 3, 4, 5, 6, 9, 12})
_PICTURE_NALS = frozenset({1, 2, 5})  # their nal_ref_idc says whether other pictures refer to this one
_IDR = 5


class _H264Packets:
    """What an H.264 packet holds, read from its NAL unit headers (MP4/MOV: length-prefixed; AVI: start codes)."""

    def __init__(self, extradata: bytes | None):
        # avcC record (MP4/MOV): version 1, NAL length size - 1 in the low bits of byte 4. Otherwise Annex B.
        avcc = extradata is not None and len(extradata) >= 7 and extradata[0] == 1
        self.length_size = (extradata[4] & 3) + 1 if avcc else 0

    def headers(self, packet: av.Packet) -> list[int] | None:
        """The first byte of each NAL unit, or None when the packet does not parse (it is then decoded)."""
        data = memoryview(packet) if self.length_size else bytes(packet)
        size, found = len(data), []
        if self.length_size:
            at, width = 0, self.length_size
            while at < size:
                length = int.from_bytes(data[at : at + width], "big")
                if length == 0 or at + width + length > size:
                    return None
                found.append(data[at + width])
                at += width + length
        else:
            at = data.find(b"\x00\x00\x01")
            while 0 <= at < size - 3:
                found.append(data[at + 3])
                at = data.find(b"\x00\x00\x01", at + 3)
        if not found or any(header & 0x80 for header in found):  # forbidden_zero_bit
            return None
        return found

    def kind(self, packet: av.Packet) -> tuple[bool, bool, bool]:
        """(may be left undecoded, no picture refers to it, IDR: no picture after it refers to one before it)"""
        headers = self.headers(packet)
        if headers is None:
            return False, False, False
        pictures = [header for header in headers if header & 0x1F in _PICTURE_NALS]
        droppable = bool(pictures) and all(header & 0x1F in _DROPPABLE_NALS for header in headers)
        unreferenced = bool(pictures) and all(header >> 5 & 3 == 0 for header in pictures)
        return droppable, unreferenced, any(header & 0x1F == _IDR for header in pictures)


class _Grid:
    """Could a frame be sampled? Asked for each packet in decoding order, answered conservatively.

    The sampler takes a frame when a grid point lies after the previous frame's time (in presentation order)
    and at or before its own. In decoding order the previous frame may not have been read yet, so the latest
    time already read below this one stands in for it: that is never later than the true previous frame, so
    the window checked is never narrower, and no frame the sampler would take is left undecoded."""

    WINDOW = 64  # recent presentation times kept; B-frame reordering is far shallower

    def __init__(self, fps: float, time_base: float):
        self.fps, self.time_base = fps, time_base
        self.seen: list[int] = []
        self.forgotten: int | None = None  # the latest time dropped from the window

    def wanted(self, pts: int) -> bool:
        index = bisect.bisect_left(self.seen, pts)
        before = self.seen[index - 1] if index else self.forgotten
        self.seen.insert(index, pts)
        if len(self.seen) > self.WINDOW:
            dropped = self.seen.pop(0)
            self.forgotten = dropped if self.forgotten is None else max(self.forgotten, dropped)
        if before is None or before >= pts:
            return True
        now, then = pts * self.time_base, before * self.time_base
        return math.floor((now + GRID_MARGIN) * self.fps) > math.floor((then - GRID_MARGIN) * self.fps)


class FrameSampler:
    """Decode ``stream`` and yield the first frame at or after each point of a ``fps`` grid (0, 1/fps, …).

    With ``skip`` (H.264 only), packets the sampled frames cannot need are never decoded: a picture no other
    picture refers to (nal_ref_idc 0: most B-frames) unless it may be sampled, and the rest of a GOP after
    its last possible sample once the next IDR picture has been read (nothing after an IDR refers to what
    came before it). The frames yielded are the same as without ``skip``; only the work differs.

    ``reached`` is how far decoding got, in seconds (the last decoded frame's end), as without ``skip``: every
    packet read after the last one decoded for a sample is decoded at the end of the file, so a video that
    stops early looks exactly as truncated as before, and a whole one as complete.
    """

    def __init__(
        self,
        container: av.container.InputContainer,
        stream: av.video.stream.VideoStream,
        fps: float,
        skip: bool = True,
        stop: threading.Event | None = None,
    ):
        self.container, self.stream, self.fps, self.stop = container, stream, fps, stop
        self.skip = skip and stream.codec_context.name == "h264"
        self.start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
        rate = float(stream.average_rate or 0)
        self.step = 1 / rate if rate else 0.0
        self.reached = 0.0
        self.packets = self.decoded = 0  # read from the file / given to the decoder

    def __iter__(self) -> Iterator[av.VideoFrame]:
        self.stream.thread_type = "AUTO"
        next_sample = 0.0
        for packet in self._packets():
            for frame in packet.decode():
                if frame.time is None:
                    continue
                self.reached = max(self.reached, frame.time - self.start + self.step)
                if frame.time + 1e-6 < next_sample:
                    continue
                yield frame
                next_sample = (math.floor(frame.time * self.fps + 1e-6) + 1) / self.fps  # a grid: no drift

    def _packets(self) -> Iterator[av.Packet]:
        grid = _Grid(self.fps, float(self.stream.time_base))
        h264 = _H264Packets(self.stream.codec_context.extradata)
        # Packets read since the last one decoded, not sampled: (packet, referenced, IDR). When a sampled
        # packet comes, the referenced ones after the last IDR among them are decoded first and the rest
        # dropped; at the end of the file (or where it is cut short) all of them are decoded, in order, so the
        # end is decoded as without skipping.
        held: deque[tuple[av.Packet, bool, bool]] = deque()
        held_bytes = 0
        for packet in self.container.demux(self.stream):
            if self.stop is not None and self.stop.is_set():
                return
            self.packets += packet.size > 0
            if not self.skip or packet.size == 0 or packet.is_corrupt or packet.pts is None:
                self.decoded += len(held) + (packet.size > 0)
                yield from [item for item, _, _ in held]
                held.clear()
                held_bytes = 0
                yield packet  # the size-0 packet at the end flushes the decoder
                continue
            wanted = grid.wanted(packet.pts)
            droppable, unreferenced, idr = h264.kind(packet)
            if wanted or not droppable:
                after = len(held) if idr else max((i for i, item in enumerate(held) if item[2]), default=0)
                needed = [item for item, referenced, _ in list(held)[after:] if referenced]
                self.decoded += len(needed) + 1
                yield from needed
                held.clear()
                held_bytes = 0
                yield packet
                continue
            held.append((packet, not unreferenced, idr))
            held_bytes += packet.size
            while len(held) > MAX_PENDING_PACKETS or held_bytes > MAX_PENDING_BYTES:
                first_idr = next((i for i, item in enumerate(held) if item[2] and i), 0)
                for _ in range(first_idr or 1):  # up to the first IDR: never needed; else the oldest
                    oldest, referenced, _ = held.popleft()
                    held_bytes -= oldest.size
                    if referenced and not first_idr:
                        self.decoded += 1
                        yield oldest


def decode_only(path: Path, fps: float = 1.0, skip: bool = True) -> dict:
    """Decode and sample ``path`` as ``analyze`` does (the same packets skipped, sampled frames converted to
    RGB) with no model: ``seconds``, ``frames`` sampled, ``packets`` read and ``decoded_packets``."""
    started, frames = time.perf_counter(), 0
    with av.open(str(path)) as container:
        sampler = FrameSampler(container, container.streams.video[0], fps, skip=skip)
        for frame in sampler:
            frame.to_ndarray(format="rgb24")
            frames += 1
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "frames": frames, "packets": sampler.packets, "decoded_packets": sampler.decoded}


def decode_limit_seconds(path: Path, fps: float = 1.0) -> float:
    """The decode-only limit: the fastest an analysis of ``path`` at ``fps`` can be, models costing nothing."""
    return decode_only(path, fps)["seconds"]


def default_workers(detector: object) -> int:
    """Frames analysed at once: 2 for a detector that says it is ``thread_safe`` when there are 2+ cores, else 1.

    Measured on 2 cores (docs/detector.md): when decoding is cheap (bikes.mp4, 640×272) two frames at once
    finish ~1.35× sooner; when decoding is the bottleneck (720p) it makes no difference either way."""
    return 2 if getattr(detector, "thread_safe", False) and (os.cpu_count() or 1) >= 2 else 1


def analyze(
    path: Path,
    fps: float | None = None,
    detector: Detector | None = None,
    progress: Progress | None = None,
    max_duration_millis: int = MAX_DURATION_MILLIS,
    skip: bool = True,
    workers: int | None = None,
) -> Analysis:
    """Sample ``fps`` frames per second (on a time grid) and collect Rekognition-shaped detections.

    ``skip``: leave undecoded the packets no sampled frame needs (``FrameSampler``). ``workers``: frames given
    to the detector at once (default ``default_workers``; always 1 for a detector that is not ``thread_safe``)."""
    fps = fps or default_fps()
    detector = detector or NudityDetector()
    workers = (workers or default_workers(detector)) if getattr(detector, "thread_safe", False) else 1
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
    sampler = FrameSampler(container, stream, fps, skip=skip, stop=stop)

    def put(item: object) -> bool:
        while not stop.is_set():  # never block forever: the consumer may have given up
            try:
                frames.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        sampled = iter(sampler)
        try:
            for frame in sampled:
                if stop.is_set() or not put((round(frame.time * 1000), frame.to_ndarray(format="rgb24"))):
                    return
        except Exception as error:  # reported by the consumer, never lost in this thread
            failure.append(error)
        finally:
            sampled.close()
            container.close()
            put(_END)

    thread = threading.Thread(target=decode, name="vidmod-decode", daemon=True)
    thread.start()
    expected = max(1, math.ceil(metadata["DurationMillis"] / 1000 * fps - 1e-6))
    try:
        for timestamp, labels in _detect_in_order(detector, frames, workers):
            analysis.frames += 1
            for label, confidence in labels.items():
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
    _check_complete(analysis, failure, sampler.reached)
    return analysis


AHEAD = 2  # decoded frames waiting in the queue before a second one goes to the detector in parallel


def _detect_in_order(detector: Detector, frames: queue.Queue, workers: int) -> Iterator[tuple[int, dict]]:
    """(timestamp, labels) for each queued frame, in order; up to ``workers`` frames in the detector at once."""
    if workers < 2:
        while (item := frames.get()) is not _END:
            yield item[0], detector.detect(item[1])
        return
    running: deque[tuple[int, Future]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="vidmod-detect") as pool:
        try:
            while (item := frames.get()) is not _END:
                running.append((item[0], pool.submit(detector.detect, item[1])))
                # Another frame in parallel only while the decoder is ahead (frames wait in the queue): when
                # decoding is the bottleneck, a second inference would only take CPU from the decoder.
                while running and (len(running) >= workers or frames.qsize() < AHEAD):
                    timestamp, future = running.popleft()
                    yield timestamp, future.result()
            while running:
                timestamp, future = running.popleft()
                yield timestamp, future.result()
        finally:
            for _, future in running:
                future.cancel()


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
