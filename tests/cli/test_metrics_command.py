"""`vidmod metrics` against a moto-backed decisions table and results bucket (the calls `--aws` makes), text and
JSON; the window's spellings; the local endpoint by default, like `vidmod audit`."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from quality_fixtures import OUTPUTS, RECORDS, output, record, review_detail, store

from vidmod.cli import metrics as cli
from vidmod.cli.main import DEFAULT_ENDPOINT, build_parser, main
from vidmod.quality.figures import compute

TABLE = "vidmod-DecisionsTable-X"
WINDOW_ARGS = ["--since", "2026-12-01", "--until", "2026-12-08T00:00:00Z"]
EVIL = "[bold red]<img src=x onerror=alert(1)>[/]"


@pytest.fixture(autouse=True)
def no_environment(monkeypatch):
    for name in ("VIDMOD_ENDPOINT", "VIDMOD_DECISIONS_TABLE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "t")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "t")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def aws():
    """The fixture set in a moto table (with a second page: the scan must follow it) and bucket."""
    with mock_aws():
        ddb, s3 = boto3.client("dynamodb"), boto3.client("s3")
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "videoUri", "KeyType": "HASH"},
                {"AttributeName": "executionName", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "videoUri", "AttributeType": "S"},
                {"AttributeName": "executionName", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        s3.create_bucket(Bucket="results")
        store(ddb, s3, TABLE, RECORDS, OUTPUTS)
        yield ddb, s3


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["metrics", "--aws", "--decisions-table", TABLE, *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_is_the_figures_of_the_window(aws, capsys):
    code, out, err = run(capsys, *WINDOW_ARGS, "--format", "json")
    assert (code, err) == (0, "")
    from quality_fixtures import WINDOW

    figures = json.loads(out)
    expected = json.loads(json.dumps(compute(RECORDS, OUTPUTS, WINDOW).to_dict()))
    assert figures | {"notes": []} == expected  # read from the table and the bucket: the same figures
    assert figures["decisions"]["total"] == 12 and figures["reviews"]["outputsRead"] == 3
    assert figures["notes"] == ["1 review output(s) not readable: those reviews counted from their record"]
    assert run(capsys, *WINDOW_ARGS, "--format", "json")[1] == out  # stable


def test_text_has_a_table_per_figure(aws, capsys):
    code, out, err = run(capsys, *WINDOW_ARGS)
    assert (code, err) == (0, "")
    assert "2026-12-01T00:00:00.000Z – 2026-12-08T00:00:00.000Z" in out
    for title in (
        "Decisions: 12",
        "Detector precision per category",
        "Automatic decisions overturned by audits",
        "Reviewers",
        "Review latency",
    ):
        assert title in out
    violence = next(line for line in out.splitlines() if line.strip("│ ").startswith("Violence"))
    assert "57.1%" in violence  # 4 / 7
    approve = next(line for line in out.splitlines() if line.strip("│ ").startswith("APPROVE"))
    assert "100.0%" in approve and "20.7% – 100.0%" in approve  # 1 of 1 overturned, Wilson [0.2065, 1]
    latency = out[out.index("Review latency") :]
    human = next(line for line in latency.splitlines() if line.strip("│ ").startswith("human"))
    assert "2.0 min" in human and "10.0 min" in human  # p50 120 s, max 600 s


def test_labels_and_reviewer_names_are_printed_literally(aws, capsys):
    ddb, s3 = aws
    segment = {"index": 0, "name": EVIL, "parentName": "Violence", "category": "Violence"}
    answers = [
        {
            "workerId": EVIL,
            "submissionTime": "2026-12-02T00:00:00.000Z",
            "answerContent": {"decision-approve": {"value": True}, "seg-0-tp": {"value": True}},
        }
    ]
    uri = "s3://results/evil/output.json"
    evil = record("evil", "2026-12-02T00:00:00.000Z", "APPROVE", "human", detail=review_detail("APPROVE", uri, []))
    store(ddb, s3, TABLE, [evil], {uri: output("evil", answers, [segment])})
    code, out, _ = run(capsys, *WINDOW_ARGS)
    assert code == 0
    assert out.count(EVIL) == 2  # the label (under Violence) and the reviewer, markup and all


def test_an_empty_window_says_so(aws, capsys):
    code, out, _ = run(capsys, "--since", "2020-01-01", "--until", "2020-01-02")
    assert code == 0 and "No decisions in this window." in out
    code, out, _ = run(capsys, "--since", "2020-01-01", "--until", "2020-01-02", "--format", "json")
    assert code == 0 and json.loads(out)["decisions"]["total"] == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "yesterday"], "'yesterday' is not a time: use a duration like 30m, 12h, 7d, 2w"),
        (["--since", "1d", "--until", "2d"], "the window is empty: since must be before until"),
    ],
)
def test_a_bad_window_is_one_line_and_exit_2(aws, capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.startswith(f"vidmod metrics: {message}") and err.count("\n") == 1


def test_a_missing_table_is_one_line_and_exit_2(aws, capsys):
    code = main(["metrics", "--aws", "--decisions-table", "nope"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("vidmod metrics: ResourceNotFoundException:") and err.count("\n") == 1


def test_targets_mirror_vidmod_audit(monkeypatch):
    parse = build_parser().parse_args
    assert parse(["metrics"]).endpoint_url == DEFAULT_ENDPOINT and parse(["metrics"]).since == "7d"
    assert parse(["metrics", "--aws"]).endpoint_url == ""
    assert cli.local_sources(parse(["metrics"])).decisions_table == "vidmod-DecisionsTable"
    asked = []

    def outputs(cloudformation, stack):
        asked.append((cloudformation.meta.region_name, stack))
        return {"DecisionsTableName": TABLE}

    monkeypatch.setattr("vidmod.cloud.stack_outputs", outputs)
    sources = cli.aws_sources(parse(["metrics", "--aws", "--stack-name", "mod-prod", "--region", "eu-west-1"]))
    assert asked == [("eu-west-1", "mod-prod")] and sources.decisions_table == TABLE
    assert sources.ddb.meta.region_name == "eu-west-1"
