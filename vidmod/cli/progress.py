"""The local detector's progress in the terminal: long videos take a while, and silence looks like a hang.

``DetectorProgress`` is the detector's ``on_progress`` callback (called from its worker thread). ``vidmod
local up`` shows a bar per video being analysed; ``vidmod demo`` folds the latest figures into its status line.
"""

from __future__ import annotations

import threading

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

FINISHED = ("SUCCEEDED", "FAILED")


def _video_name(update: dict) -> str:
    video = update.get("Video", {}).get("S3Object", {})
    return f"s3://{video.get('Bucket', '?')}/{video.get('Name', '?')}"


class DetectorProgress:
    def __init__(self, console: Console, bars: bool):
        self._lock = threading.Lock()
        self._latest: dict[str, dict] = {}
        self._tasks: dict[str, int] = {}
        self._bars = (
            Progress(
                TextColumn("analysing {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("frames"),
                TimeElapsedColumn(),
                console=console,
            )
            if bars
            else None
        )

    def __call__(self, update: dict) -> None:
        job, done, total = update["JobId"], update.get("framesDone", 0), update.get("framesExpected") or None
        with self._lock:
            self._latest[job] = update
            if self._bars is None:
                return
            if job not in self._tasks:
                self._bars.start()
                self._tasks[job] = self._bars.add_task(escape(_video_name(update)), total=total)
            self._bars.update(self._tasks[job], completed=done, total=total)
            if update.get("JobStatus") in FINISHED:
                self._bars.remove_task(self._tasks.pop(job))
                name = escape(_video_name(update))
                message = escape(update.get("StatusMessage") or "")  # e.g. the categories it could not check
                self._bars.console.print(
                    f"analysed {name}: {done} frames, {update['JobStatus']}" + (f" — {message}" if message else "")
                )
                if not self._tasks:
                    self._bars.stop()

    def summary(self) -> str:
        """The running analyses in one line, e.g. ``analysing s3://b/clip.mp4: 12/60 frames``."""
        with self._lock:
            running = [u for u in self._latest.values() if u.get("JobStatus") not in FINISHED]
        return "; ".join(
            f"analysing {_video_name(u)}: {u.get('framesDone', 0)}/{u.get('framesExpected') or '?'} frames"
            for u in running
        )

    def stop(self) -> None:
        if self._bars is not None:
            self._bars.stop()
