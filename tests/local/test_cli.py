"""`vidmod local up` refuses a bad setting with one line naming it, before anything starts."""

from __future__ import annotations

import pytest

from vidmod.cli import main


@pytest.mark.parametrize("fps", ["0", "-1", "fast", "nan", "1000"])
def test_a_bad_sampling_rate_is_refused_at_start(tmp_path, monkeypatch, fps):
    monkeypatch.setenv("VIDMOD_DETECTOR_FPS", fps)
    with pytest.raises(SystemExit) as stopped:
        main(["local", "up", "--state-dir", str(tmp_path), "--port", "0", "--portal-port", "0"])
    assert str(stopped.value) == (
        f"vidmod: VIDMOD_DETECTOR_FPS={fps!r}: give the frames per second to analyse, above 0 and at most 60"
    )
    assert not (tmp_path / "stack.pickle").exists()  # nothing was saved for a stack that never ran
