"""What the terminal shows while the local detector analyses a video."""

from __future__ import annotations

import io

from rich.console import Console

from vidmod.cli.progress import DetectorProgress


def update(done: int, status: str = "IN_PROGRESS", key: str = "uploads/[red]clip[/].mp4", message: str = "") -> dict:
    return {
        "StatusMessage": message,
        "JobId": "job-1",
        "Video": {"S3Object": {"Bucket": "media", "Name": key}},
        "framesDone": done,
        "framesExpected": 60,
        "durationMillis": 60_000,
        "JobStatus": status,
    }


def test_the_status_line_names_the_video_and_counts_frames_until_it_is_done():
    progress = DetectorProgress(Console(file=io.StringIO()), bars=False)
    assert progress.summary() == ""
    progress(update(12))
    assert progress.summary() == "analysing s3://media/uploads/[red]clip[/].mp4: 12/60 frames"
    progress(update(60, "SUCCEEDED"))
    assert progress.summary() == ""


def test_local_up_prints_each_finished_analysis_literally():
    out = io.StringIO()
    progress = DetectorProgress(Console(file=out, width=200), bars=True)
    progress(update(30))
    progress(update(60, "SUCCEEDED", message="Local detector. Not covered: Violence, [b]Alcohol[/b]"))
    progress.stop()
    assert (
        "analysed s3://media/uploads/[red]clip[/].mp4: 60 frames, SUCCEEDED — Local detector. Not covered: Violence, "
        "[b]Alcohol[/b]"
    ) in out.getvalue()
