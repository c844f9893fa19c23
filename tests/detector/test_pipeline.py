"""The faster pipeline changes nothing: gated models, skipped packets and parallel frames against the plain path."""

from __future__ import annotations

import hashlib
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vidmod.detector.analyze import FrameSampler, TruncatedVideo, analyze
from vidmod.detector.models import NUDENET_TO_V7, UNGATED, Label, NudityDetector
from vidmod.detector.samples import sample_video_path
from vidmod.detector.synthetic import loop_video, make_test_video

WEAPONS = Label("Weapons", "Violence", 2)
KNOWN_POSITIVE = 2200  # ms: the Big Buck Bunny frame both models flag (docs/detector.md, test_detector.py)


def previous_detect(parts: list[dict], nsfw: float, part_threshold: float = 0.5, frame_threshold: float = 0.5):
    """``NudityDetector.detect`` before its gating changed (verbatim): every label needed both models."""
    parts = [p for p in parts if p["class"] in NUDENET_TO_V7 and p["score"] >= part_threshold]
    if not parts:
        return {}
    if nsfw < frame_threshold:
        return {}
    labels: dict[Label, float] = {}
    for part in parts:
        confidence = round(100 * min(part["score"], nsfw), 3)
        for label in NUDENET_TO_V7[part["class"]]:
            labels[label] = max(labels.get(label, 0.0), confidence)
    return labels


def nudenet_own_parts(detector: NudityDetector, frame_rgb: np.ndarray) -> list[dict]:
    """What ``parts`` used to be: nudenet's own wrapper, given the frame as BGRA."""
    alpha = np.full((*frame_rgb.shape[:2], 1), 255, np.uint8)
    bgra = np.ascontiguousarray(np.concatenate([frame_rgb[..., ::-1], alpha], axis=-1))
    return detector._models()[0].detect(bgra)


@pytest.fixture(scope="module")
def detector() -> NudityDetector:
    return NudityDetector()


@pytest.fixture(scope="module")
def real_frames(detector) -> list[tuple[str, np.ndarray, list[dict], float]]:
    """Real frames (every 3rd of Big Buck Bunny, its two positives, every 25th of bikes) with both models' output."""
    chosen = []
    bunny, bikes = (lambda i: i % 3 == 0 or i in (54, 55)), (lambda i: i % 25 == 0)
    for name, keep in (("bigbuckbunny.mp4", bunny), ("bikes.mp4", bikes)):
        with av.open(str(sample_video_path(name))) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if keep(index):
                    chosen.append((f"{name}@{round(frame.time * 1000)}", frame.to_ndarray(format="rgb24")))
    return [(key, image, detector.parts(image), detector.frame_score(image)) for key, image in chosen]


def test_the_gated_detector_gives_exactly_what_both_models_gave_on_real_frames(real_frames):
    """nudenet first, open-nsfw only where it found an explicit part: on the sample videos (no bare male chest
    among them) the same labels and confidences as both models on every frame, frame by frame."""
    outputs = {id(image): (parts, nsfw) for _, image, parts, nsfw in real_frames}
    gated, asked = NudityDetector(), []
    gated.frame_score = lambda image: asked.append(id(image)) or outputs[id(image)][1]
    gated.parts = lambda image: outputs[id(image)][0]
    positives = set()
    for key, image, parts, nsfw in real_frames:
        expected = previous_detect(parts, nsfw)
        assert gated.detect(image) == expected, key
        positives |= {key} if expected else set()
    assert positives == {"bigbuckbunny.mp4@2160", f"bigbuckbunny.mp4@{KNOWN_POSITIVE}"}
    explicit = [
        id(image)
        for _, image, parts, _ in real_frames
        if any(p["class"] in NUDENET_TO_V7 and p["class"] not in UNGATED and p["score"] >= 0.5 for p in parts)
    ]
    assert asked == explicit and len(explicit) < len(real_frames) / 3  # open-nsfw ran only where needed
    for key, image, parts, nsfw in real_frames:  # the worst case (both on every frame) agrees too
        assert gated.detect_both(image) == previous_detect(parts, nsfw), key
    assert len(real_frames) > 50


def test_parts_is_nudenets_own_detect_exactly(detector, real_frames):
    """The bulk pre/post-processing gives the very boxes, classes and scores nudenet's wrapper gives."""
    with_parts = 0
    for key, image, parts, _ in real_frames:
        assert parts == nudenet_own_parts(detector, image), key
        with_parts += bool(parts)
    assert with_parts >= 20  # the comparison covers real boxes, not only empty lists


def test_two_frames_at_once_give_the_sequential_result_on_the_known_positive(detector):
    path = sample_video_path("bigbuckbunny.mp4")
    one = analyze(path, fps=5, detector=detector, workers=1)
    two = analyze(path, fps=5, detector=detector, workers=2)
    assert two.detections == one.detections and two.frames == one.frames == 27
    assert {d["Timestamp"] for d in two.detections} == {KNOWN_POSITIVE}


class Jittery:
    """Thread-safe stand-in: frames finish out of order; records how many ran at once."""

    version, covered, thread_safe = "jittery", ("Violence",), True

    def __init__(self):
        self.lock, self.running, self.most = threading.Lock(), 0, 0

    def detect(self, frame_rgb: np.ndarray) -> dict[Label, float]:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        value = int(frame_rgb[0, 0, 0])
        time.sleep(0.002 + (value % 7) * 0.003)
        with self.lock:
            self.running -= 1
        return {WEAPONS: float(value)}


def test_parallel_frames_come_out_in_timestamp_order_identical_to_sequential(tmp_path):
    clip = make_test_video(tmp_path / "clip.mp4", seconds=4, fps=10, size=(160, 120))
    model = Jittery()
    sequential = analyze(clip, fps=10, detector=model, workers=1)
    assert model.most == 1
    parallel = analyze(clip, fps=10, detector=model, workers=2)
    assert model.most == 2
    assert parallel.detections == sequential.detections and parallel.frames == 40
    timestamps = [d["Timestamp"] for d in parallel.detections]
    assert timestamps == sorted(timestamps)


def test_a_failing_model_with_two_workers_leaves_no_thread_behind(tmp_path):
    class Boom(Jittery):
        def detect(self, frame_rgb):
            raise RuntimeError("model broke")

    clip = make_test_video(tmp_path / "long.mp4", seconds=6, fps=10, size=(160, 120))
    with pytest.raises(RuntimeError, match="model broke"):
        analyze(clip, fps=10, detector=Boom(), workers=2)
    names = {t.name.split("_")[0] for t in threading.enumerate()}
    assert not names & {"vidmod-decode", "vidmod-detect"}


# ---------------------------------------------------------------- packets left undecoded
def sampled(path: Path, fps: float, skip: bool) -> tuple[list[tuple[int, str]], FrameSampler]:
    with av.open(str(path)) as container:
        sampler = FrameSampler(container, container.streams.video[0], fps, skip=skip)
        frames = [
            (round(f.time * 1000), hashlib.sha256(f.to_ndarray(format="rgb24").tobytes()).hexdigest()) for f in sampler
        ]
    return frames, sampler


@pytest.fixture(scope="module")
def b_frames(tmp_path_factory) -> Path:
    """x264 with B-frames (some unreferenced) at 29.97 fps."""
    return make_test_video(tmp_path_factory.mktemp("b") / "ntsc.mp4", 6, Fraction(30000, 1001), (160, 120))


@pytest.mark.parametrize("fps", [0.5, 1, 2, 5])
@pytest.mark.parametrize("name", ["bikes.mp4", "bigbuckbunny.mp4", "ntsc"])
def test_skipping_packets_samples_the_very_same_frames(name, fps, b_frames):
    path = b_frames if name == "ntsc" else sample_video_path(name)
    skipped, sampler = sampled(path, fps, skip=True)
    everything, plain = sampled(path, fps, skip=False)
    assert skipped == everything and len(skipped) >= 3 * fps
    assert plain.decoded == plain.packets and sampler.packets == plain.packets
    assert sampler.reached == plain.reached  # decoded to the same end
    if name == "bikes.mp4" and fps <= 2:  # B-frames and 1.7 s GOPs: most packets are never decoded
        assert sampler.decoded < 0.6 * sampler.packets
    if name == "bigbuckbunny.mp4":  # one GOP of P-frames, all referenced: nothing can be skipped
        assert sampler.decoded == sampler.packets


def test_a_whole_video_still_looks_whole_with_packets_skipped(tmp_path):
    video = loop_video(sample_video_path("bikes.mp4"), tmp_path / "bikes-20s.mp4", seconds=20)
    _, sampler = sampled(video, 1, skip=True)
    assert sampler.decoded < 0.6 * sampler.packets and sampler.reached == pytest.approx(20.0)
    result = analyze(video, fps=1, detector=Jittery())
    assert result.frames == 20


def faststart_copy(source: Path, path: Path) -> Path:
    """The same packets with the index first: cutting the file then leaves an index that promises more."""
    with av.open(str(source)) as reader, av.open(str(path), "w", options={"movflags": "faststart"}) as writer:
        stream_in = reader.streams.video[0]
        stream_out = writer.add_stream_from_template(stream_in)
        for packet in reader.demux(stream_in):
            if packet.dts is not None:
                packet.stream = stream_out
                writer.mux(packet)
    return path


@pytest.mark.parametrize("percent", [25, 29, 45, 65, 80])
def test_a_truncated_video_still_looks_truncated_with_packets_skipped(tmp_path, percent):
    whole = faststart_copy(
        loop_video(sample_video_path("bikes.mp4"), tmp_path / "loop.mp4", seconds=20), tmp_path / "whole.mp4"
    )
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * percent // 100])
    _, skipping = sampled(cut, 1, skip=True)
    _, plain = sampled(cut, 1, skip=False)
    assert skipping.decoded < skipping.packets
    # the end is decoded as without skipping; a decode error there may lose one frame more or less
    assert abs(skipping.reached - plain.reached) <= 0.04 + 1e-9 and plain.reached < 0.9 * 20
    with pytest.raises(TruncatedVideo, match=r"Decoded \d+\.\d of 20\.0 s; the file is truncated or corrupt\."):
        analyze(cut, fps=1, detector=Jittery())
