"""Make small real videos for tests and benchmarks (PyAV writes them; nothing is downloaded)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def make_test_video(
    path: Path,
    seconds: float = 2,
    fps: int | Fraction = 10,
    size: tuple[int, int] = (320, 240),
    codec: str = "h264",
    options: dict[str, str] | None = None,
) -> Path:
    """Moving gradients, ``seconds`` long; ``codec``/``options`` (e.g. ``movflags=faststart``) for error cases."""
    width, height = size
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
        y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
        for index in range(round(seconds * float(fps))):
            shift = index * 7 % 256
            frame = np.stack(
                [(x + shift) % 256 + 0 * y, (y + shift) % 256 + 0 * x, np.full((height, width), 90.0)], axis=-1
            )
            packet_frame = av.VideoFrame.from_ndarray(frame.astype(np.uint8), format="rgb24")
            container.mux(stream.encode(packet_frame))
        container.mux(stream.encode())
    return path


def loop_video(source: Path, path: Path, seconds: float) -> Path:
    """Repeat ``source``'s packets (no re-encode) in whole loops until at least ``seconds`` long: real footage."""
    with av.open(str(source)) as reader, av.open(str(path), "w") as writer:
        stream_in = reader.streams.video[0]
        stream_out = writer.add_stream_from_template(stream_in)
        packets = [
            (bytes(p), p.pts, p.dts, p.is_keyframe, p.duration) for p in reader.demux(stream_in) if p.dts is not None
        ]
        period = max(p[1] for p in packets) - min(p[1] for p in packets) + (packets[0][4] or 1)
        for loop in range(max(1, -int(-seconds // float(period * stream_in.time_base)))):
            for data, pts, dts, keyframe, duration in packets:
                packet = av.Packet(data)
                packet.pts, packet.dts, packet.duration = pts + loop * period, dts + loop * period, duration
                packet.is_keyframe, packet.time_base, packet.stream = keyframe, stream_in.time_base, stream_out
                writer.mux(packet)
    return path
