"""Make small real H.264 videos for tests and benchmarks (PyAV writes them; nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def make_test_video(path: Path, seconds: float = 2, fps: int = 10, size: tuple[int, int] = (320, 240)) -> Path:
    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("h264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
        y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
        for index in range(int(seconds * fps)):
            shift = index * 7 % 256
            frame = np.stack(
                [(x + shift) % 256 + 0 * y, (y + shift) % 256 + 0 * x, np.full((height, width), 90.0)], axis=-1
            )
            packet_frame = av.VideoFrame.from_ndarray(frame.astype(np.uint8), format="rgb24")
            container.mux(stream.encode(packet_frame))
        container.mux(stream.encode())
    return path
