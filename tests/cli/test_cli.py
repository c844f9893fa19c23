"""`vidmod local up` refuses a bad setting with one line naming it, before anything starts."""

from __future__ import annotations

import pytest

from vidmod.cli.main import main


@pytest.mark.parametrize("fps", ["0", "-1", "fast", "nan", "1000"])
def test_a_bad_sampling_rate_is_refused_at_start(tmp_path, monkeypatch, fps):
    monkeypatch.setenv("VIDMOD_DETECTOR_FPS", fps)
    with pytest.raises(SystemExit) as stopped:
        main(["local", "up", "--state-dir", str(tmp_path), "--port", "0", "--portal-port", "0"])
    assert str(stopped.value) == (
        f"vidmod: VIDMOD_DETECTOR_FPS={fps!r}: give the frames per second to analyse, above 0 and at most 60"
    )


def test_a_reviewer_portal_port_in_use_is_named_instead_of_hanging(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as stopped:
            main(["local", "up", "--state-dir", str(tmp_path), "--port", "0", "--portal-port", str(port)])
    expected = f"vidmod: the reviewer portal cannot listen on 127.0.0.1:{port} (in use? --portal-port)"
    assert str(stopped.value) == expected


def test_an_unknown_parameter_is_named(tmp_path):
    with pytest.raises(SystemExit) as stopped:
        main(["local", "up", "--state-dir", str(tmp_path), "-p", "NoSuchParameter=1"])
    assert "unknown parameter overrides: ['NoSuchParameter']" in str(stopped.value)


def test_commands_without_a_running_stack_say_so_in_one_line(capsys):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    assert main(["status", "--endpoint-url", dead]) == 2
    out = capsys.readouterr().out
    assert "Could not connect to the endpoint URL" in out and "vidmod local up" in out and "Traceback" not in out


@pytest.mark.parametrize("missing", ["model", "labels"])
def test_a_user_model_that_cannot_be_loaded_is_named(tmp_path, monkeypatch, missing):
    labels = tmp_path / "labels.json"
    labels.write_text('{"labels": {"0": ["Violence", "Weapons"]}}', encoding="utf-8")
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not an onnx model")
    gone = tmp_path / "gone"
    monkeypatch.setenv("VIDMOD_DETECTOR_MODEL", str(gone if missing == "model" else model))
    monkeypatch.setenv("VIDMOD_DETECTOR_LABELS", str(gone if missing == "labels" else labels))
    with pytest.raises(SystemExit) as stopped:
        main(["local", "up", "--state-dir", str(tmp_path / "state"), "--port", "0", "--portal-port", "0"])
    message = str(stopped.value)
    assert message.startswith("vidmod: VIDMOD_DETECTOR_MODEL=") and "cannot be loaded" in message
    assert "Traceback" not in message
