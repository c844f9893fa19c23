"""The local detector: real decoding, the model-agreement rule, the v7 mapping, and the Rekognition contract."""

from __future__ import annotations

import time
from pathlib import Path

import boto3
import botocore.session
import numpy as np
import pytest
from botocore.exceptions import ClientError

from vidmod.detector.analyze import NotAVideo, analyze
from vidmod.detector.models import MODEL_VERSION, UNCOVERED_CATEGORIES, Label, NudityDetector
from vidmod.detector.service import ContentModerationService
from vidmod.detector.testing import make_test_video
from vidmod.local.events import EventRouter
from vidmod.local.gateway import Gateway

WEAPONS = Label("Weapons", "Violence", 2)


class EveryFrame:
    """A stand-in model (the Detector protocol): one label per sampled frame, confidence rising."""

    version = "test"

    def __init__(self):
        self.calls = 0

    def detect(self, frame_rgb: np.ndarray) -> dict[Label, float]:
        self.calls += 1
        assert frame_rgb.ndim == 3 and frame_rgb.shape[2] == 3
        return {WEAPONS: 60.0 + self.calls, Label("Violence", "", 1): 55.0}


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return make_test_video(tmp_path_factory.mktemp("v") / "clip.mp4", seconds=4, fps=10, size=(320, 240))


def test_analysis_decodes_real_video_and_samples_by_time(video):
    model = EveryFrame()
    result = analyze(video, fps=2, detector=model)
    assert result.metadata["Codec"] == "h264" and result.metadata["FrameWidth"] == 320
    assert 3900 <= result.metadata["DurationMillis"] <= 4200
    assert result.frames == model.calls == 8
    timestamps = sorted({d["Timestamp"] for d in result.detections})
    assert timestamps[:3] == [0, 500, 1000]


def test_a_non_video_fails_with_a_clear_message(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_bytes(b"plain text pretending to be a video" * 20)
    with pytest.raises(NotAVideo, match="not a video this detector can decode"):
        analyze(bad, detector=EveryFrame())


@pytest.mark.parametrize(
    ("parts", "nsfw", "expected"),
    [
        (
            [{"class": "FEMALE_BREAST_EXPOSED", "score": 0.9}],
            0.8,
            {
                ("Exposed Female Nipple", "Explicit Nudity", 3): 80.0,
                ("Explicit Nudity", "Explicit", 2): 80.0,
                ("Explicit", "", 1): 80.0,
            },
        ),
        (
            [{"class": "MALE_BREAST_EXPOSED", "score": 0.7}],
            0.9,
            {
                ("Exposed Male Nipple", "Non-Explicit Nudity", 3): 70.0,
                ("Non-Explicit Nudity", "Non-Explicit Nudity of Intimate parts and Kissing", 2): 70.0,
                ("Non-Explicit Nudity of Intimate parts and Kissing", "", 1): 70.0,
            },
        ),
        # the cartoon case: nudenet fires, open-nsfw does not → nothing
        ([{"class": "FEMALE_BREAST_EXPOSED", "score": 0.79}], 0.1, {}),
        # covered body parts, faces, feet are never moderation labels
        (
            [
                {"class": "FACE_FEMALE", "score": 0.99},
                {"class": "FEET_EXPOSED", "score": 0.9},
                {"class": "FEMALE_BREAST_COVERED", "score": 0.9},
            ],
            0.99,
            {},
        ),
    ],
)
def test_labels_need_both_models_and_map_to_v7(monkeypatch, parts, nsfw, expected):
    detector = NudityDetector()
    monkeypatch.setattr(detector, "parts", lambda frame: parts)
    monkeypatch.setattr(detector, "frame_score", lambda frame: nsfw)
    found = detector.detect(np.zeros((8, 8, 3), np.uint8))
    assert {(k.name, k.parent, k.level): v for k, v in found.items()} == expected


def test_real_models_find_nothing_in_a_cartoon_sample():
    from vidmod.detector.samples import sample_video_path

    result = analyze(sample_video_path("bigbuckbunny.mp4"), fps=1)
    assert result.frames >= 5 and result.detections == []


@pytest.fixture
def endpoint(tmp_path):
    router = EventRouter(lambda *_: None)
    gateway = Gateway(router)
    url = gateway.start()
    service = ContentModerationService(url, tmp_path, detector=EveryFrame(), max_video_bytes=200_000, fps=2)
    gateway.rekognition = service.wsgi_app
    kwargs = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    s3, rekognition = boto3.client("s3", **kwargs), boto3.client("rekognition", **kwargs)
    s3.create_bucket(Bucket="media")
    yield service, s3, rekognition
    service.close()
    gateway.stop()
    router.close()


def wait_done(rekognition, job_id: str, **kwargs) -> dict:
    for _ in range(100):
        response = rekognition.get_content_moderation(JobId=job_id, **kwargs)
        if response["JobStatus"] != "IN_PROGRESS":
            return response
        time.sleep(0.1)
    raise AssertionError("job did not finish")


def assert_matches_botocore_model(response: dict, operation: str) -> None:
    shape = botocore.session.get_session().get_service_model("rekognition").operation_model(operation).output_shape
    assert set(response) - {"ResponseMetadata"} <= set(shape.members)
    detection_shape = shape.members.get("ModerationLabels")
    if detection_shape is not None:
        members = set(detection_shape.member.members)
        for detection in response.get("ModerationLabels", []):
            assert set(detection) <= members
            assert set(detection["ModerationLabel"]) <= set(detection_shape.member.members["ModerationLabel"].members)


def test_start_get_paging_sorting_and_segments_through_a_real_client(endpoint, video):
    _, s3, rekognition = endpoint
    s3.upload_file(str(video), "media", "clip.mp4")
    started = rekognition.start_content_moderation(
        Video={"S3Object": {"Bucket": "media", "Name": "clip.mp4"}},
        ClientRequestToken="tok-1",
        JobTag="vidmod",
        MinConfidence=58,
    )
    again = rekognition.start_content_moderation(
        Video={"S3Object": {"Bucket": "media", "Name": "clip.mp4"}}, ClientRequestToken="tok-1"
    )
    assert again["JobId"] == started["JobId"]
    first = wait_done(rekognition, started["JobId"], MaxResults=3)
    assert first["JobStatus"] == "SUCCEEDED" and first["ModerationModelVersion"] == MODEL_VERSION
    assert first["JobTag"] == "vidmod" and first["VideoMetadata"]["Codec"] == "h264"
    assert "Not covered: " + ", ".join(UNCOVERED_CATEGORIES) in first["StatusMessage"]
    assert_matches_botocore_model(first, "GetContentModeration")
    labels, token = list(first["ModerationLabels"]), first.get("NextToken")
    while token:
        page = rekognition.get_content_moderation(JobId=started["JobId"], MaxResults=3, NextToken=token)
        labels += page["ModerationLabels"]
        token = page.get("NextToken")
    assert len(labels) == 8  # MinConfidence 58 drops the 55 % parent labels
    assert [d["Timestamp"] for d in labels] == sorted(d["Timestamp"] for d in labels)
    by_name = rekognition.get_content_moderation(JobId=started["JobId"], SortBy="NAME")
    assert by_name["GetRequestMetadata"] == {"SortBy": "NAME", "AggregateBy": "TIMESTAMPS"}
    segments = rekognition.get_content_moderation(JobId=started["JobId"], AggregateBy="SEGMENTS")
    (segment,) = segments["ModerationLabels"]
    assert segment["StartTimestampMillis"] == 0 and segment["EndTimestampMillis"] >= 3000
    assert segment["ModerationLabel"]["Confidence"] == 68.0
    assert_matches_botocore_model(segments, "GetContentModeration")


def test_error_paths_use_rekognitions_names(endpoint, tmp_path):
    _, s3, rekognition = endpoint

    def code(call, **kwargs) -> str:
        with pytest.raises(ClientError) as raised:
            call(**kwargs)
        return raised.value.response["Error"]["Code"]

    video = {"S3Object": {"Bucket": "media", "Name": "missing.mp4"}}
    assert code(rekognition.start_content_moderation, Video=video) == "InvalidS3ObjectException"
    s3.put_object(Bucket="media", Key="big.mp4", Body=b"0" * 200_001)
    big = {"S3Object": {"Bucket": "media", "Name": "big.mp4"}}
    assert code(rekognition.start_content_moderation, Video=big) == "VideoTooLargeException"
    assert code(rekognition.get_content_moderation, JobId="nope") == "ResourceNotFoundException"
    s3.put_object(Bucket="media", Key="text.mp4", Body=b"hello, I am text")
    job = rekognition.start_content_moderation(Video={"S3Object": {"Bucket": "media", "Name": "text.mp4"}})["JobId"]
    failed = wait_done(rekognition, job)
    assert failed["JobStatus"] == "FAILED" and "not a video this detector can decode" in failed["StatusMessage"]
    assert (
        code(rekognition.get_content_moderation, JobId=job, NextToken="bm90LWEtdG9rZW4=")
        == "InvalidPaginationTokenException"
    )


def test_jobs_survive_a_restart(endpoint, tmp_path, video):
    service, s3, rekognition = endpoint
    s3.upload_file(str(video), "media", "clip.mp4")
    job = rekognition.start_content_moderation(Video={"S3Object": {"Bucket": "media", "Name": "clip.mp4"}})["JobId"]
    wait_done(rekognition, job)
    reopened = ContentModerationService(service.endpoint_url, tmp_path, detector=EveryFrame())
    assert reopened.get({"JobId": job})["JobStatus"] == "SUCCEEDED"
    reopened.close()
