"""The state directory's files: torn writes detected and skipped, S3 kept exactly, events redelivered.

Kills with SIGKILL are in test_crash_safety.py / test_crash_burst.py; these tests put the files in the states a
kill leaves (a half-written record, a body without its key) and check what a start makes of them.
"""

from __future__ import annotations

import hashlib
import json
import logging

from vidmod.emulator import journal
from vidmod.emulator.event_router import EventRouter
from vidmod.emulator.stack import LocalStack, StackOptions


def test_a_torn_last_record_is_skipped_with_a_warning_that_names_it(tmp_path, caplog):
    path = tmp_path / "some.journal"
    log = journal.Journal(path)
    log.append({"n": 1}, {"n": 2})
    log.close()
    whole = path.stat().st_size
    with path.open("ab") as out:  # a kill in the middle of the third append
        out.write(journal.FRAME.pack(100, 0) + b"half a rec")
    with caplog.at_level(logging.WARNING):
        assert journal.read(path) == [{"n": 1}, {"n": 2}]
    assert f"{path}: the record at byte {whole} is torn" in caplog.text
    assert path.stat().st_size == whole  # cut back, so the next append follows a whole record
    log = journal.Journal(path)
    log.append({"n": 3})
    log.close()
    assert journal.read(path) == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_a_record_with_a_wrong_checksum_ends_the_journal_there(tmp_path, caplog):
    path = tmp_path / "flipped.journal"
    journal.rewrite(path, [{"n": 1}, {"n": 2}])
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # a bit of the last payload changed on disk
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        assert journal.read(path) == [{"n": 1}]
    assert "torn" in caplog.text


def _router(tmp_path, delivered: list, finished: bool = True) -> EventRouter:
    router = EventRouter(lambda function, event: (delivered.append((function, event["id"])), finished)[1],
                         tmp_path / "events.jsonl")  # fmt: skip
    router.add_rule("uploads", {"source": ["aws.s3"]}, "submit")
    router.add_rule("loops", {"source": ["aws.sagemaker"]}, "complete")
    return router


def test_events_not_delivered_before_a_stop_are_delivered_on_the_next_start_and_only_those(tmp_path):
    delivered: list = []
    router = _router(tmp_path, delivered)
    router.publish({"id": "done", "source": "aws.s3", "detail-type": "Object Created", "detail": {}})
    router.close()  # the stack stops: what is published now waits for the next start
    router.publish({"id": "late", "source": "aws.sagemaker", "detail-type": "status", "detail": {}})
    assert delivered == [("submit", "done")]

    delivered.clear()
    again = _router(tmp_path, delivered)
    assert again.redeliver() == 1
    again.close()
    assert delivered == [("complete", "late")]
    delivered.clear()
    assert _router(tmp_path, delivered).redeliver() == 0  # marked delivered: not sent a third time


def test_a_delivery_the_stop_cut_short_is_delivered_again(tmp_path):
    delivered: list = []
    router = _router(tmp_path, delivered, finished=False)  # e.g. the stack stopped between retries
    router.publish({"id": "cut", "source": "aws.s3", "detail-type": "Object Created", "detail": {}})
    router.close()
    delivered.clear()
    again = _router(tmp_path, delivered)
    assert again.redeliver() == 1
    again.close()
    assert delivered == [("submit", "cut")]


def test_a_torn_event_line_is_cut_off_and_the_rest_redelivered(tmp_path, caplog):
    delivered: list = []
    router = _router(tmp_path, delivered, finished=False)
    router.close()
    router.publish({"id": "kept", "source": "aws.s3", "detail-type": "Object Created", "detail": {}})
    with (tmp_path / "events.jsonl").open("a") as out:
        out.write('{"event": {"id": "torn", "sour')
    with caplog.at_level(logging.WARNING):
        again = _router(tmp_path, delivered)
        assert again.redeliver() == 1
        again.close()
    assert delivered == [("submit", "kept")]
    assert "events.jsonl: the line at byte" in caplog.text and "torn" in caplog.text
    assert (tmp_path / "events.jsonl").read_text().endswith("\n")


def test_s3_versions_delete_markers_tags_and_a_multipart_object_survive_a_restart(tmp_path):
    part = bytes(range(256)) * (5 * 1024 * 1024 // 256)  # 5 MB: the smallest part S3 accepts before the last
    with LocalStack(StackOptions(state_dir=tmp_path)) as stack:
        s3, bucket = stack.client("s3"), "scratch"  # a bucket of the user's own: its settings are kept too
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        first = s3.put_object(Bucket=bucket, Key="doc.json", Body=b"one", Tagging="stage=draft")["VersionId"]
        second = s3.put_object(Bucket=bucket, Key="doc.json", Body=b"two")["VersionId"]
        s3.put_object_tagging(Bucket=bucket, Key="doc.json", VersionId=second, Tagging={"TagSet": [{"Key": "stage", "Value": "final"}]})  # noqa: E501
        s3.put_object(Bucket=bucket, Key="dir/a b+ü%20.txt", Body=b"odd name")
        s3.put_object(Bucket=bucket, Key="gone.txt", Body=b"bye")
        s3.delete_object(Bucket=bucket, Key="gone.txt")
        upload = s3.create_multipart_upload(Bucket=bucket, Key="big.bin")["UploadId"]
        parts = [
            {"PartNumber": n, "ETag": s3.upload_part(Bucket=bucket, Key="big.bin", UploadId=upload, PartNumber=n, Body=body)["ETag"]}  # noqa: E501
            for n, body in ((1, part), (2, b"tail"))
        ]
        etag = s3.complete_multipart_upload(Bucket=bucket, Key="big.bin", UploadId=upload, MultipartUpload={"Parts": parts})["ETag"]  # noqa: E501
        listed = s3.list_object_versions(Bucket=bucket)
        before = {kind: [(v["Key"], v["VersionId"], v.get("ETag")) for v in listed.get(kind, [])]
                  for kind in ("Versions", "DeleteMarkers")}  # fmt: skip
    orphan = tmp_path / "s3" / "blobs" / "left-by-a-kill"
    orphan.write_bytes(b"an upload whose key was never committed")

    with LocalStack(StackOptions(state_dir=tmp_path)) as stack:
        s3 = stack.client("s3")
        listed = s3.list_object_versions(Bucket=bucket)
        after = {kind: [(v["Key"], v["VersionId"], v.get("ETag")) for v in listed.get(kind, [])]
                 for kind in ("Versions", "DeleteMarkers")}  # fmt: skip
        assert after == before and len(after["DeleteMarkers"]) == 1
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        assert s3.get_object(Bucket=bucket, Key="doc.json", VersionId=first)["Body"].read() == b"one"
        assert s3.get_object(Bucket=bucket, Key="doc.json")["Body"].read() == b"two"
        assert s3.get_object(Bucket=bucket, Key="dir/a b+ü%20.txt")["Body"].read() == b"odd name"
        tags = {v: s3.get_object_tagging(Bucket=bucket, Key="doc.json", VersionId=v)["TagSet"] for v in (first, second)}
        assert tags == {first: [{"Key": "stage", "Value": "draft"}], second: [{"Key": "stage", "Value": "final"}]}
        big = s3.get_object(Bucket=bucket, Key="big.bin")
        assert big["ETag"] == etag and etag.endswith('-2"')
        assert hashlib.sha256(big["Body"].read()).digest() == hashlib.sha256(part + b"tail").digest()
        assert not orphan.exists()


def test_dynamodb_items_come_back_and_a_torn_journal_tail_does_not_stop_the_start(tmp_path, caplog):
    with LocalStack(StackOptions(state_dir=tmp_path)) as stack:
        ddb, table = stack.client("dynamodb"), stack.decisions_table
        key = {"videoUri": {"S": "s3://b/k"}, "executionName": {"S": "e1"}}
        ddb.put_item(TableName=table, Item=key | {"decision": {"S": "APPROVE"}})
        ddb.update_item(TableName=table, Key=key, UpdateExpression="SET decision = :d",
                        ExpressionAttributeValues={":d": {"S": "REJECT"}})  # fmt: skip
        other = {"videoUri": {"S": "s3://b/k"}, "executionName": {"S": "e2"}}
        ddb.put_item(TableName=table, Item=other | {"decision": {"S": "APPROVE"}})
        ddb.delete_item(TableName=table, Key=other)
        ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": {
            "videoUri": {"S": "s3://b/k"}, "executionName": {"S": "e3"}, "decision": {"S": "APPROVE"}}}}]})
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": table, "Item": {
            "videoUri": {"S": "s3://b/k"}, "executionName": {"S": "e4"}, "decision": {"S": "REJECT"}}}}])  # fmt: skip
    with (tmp_path / "dynamodb.journal").open("ab") as out:
        out.write(b"\x00\x00\x01")
    with caplog.at_level(logging.WARNING), LocalStack(StackOptions(state_dir=tmp_path)) as stack:
        items = stack.client("dynamodb").scan(TableName=stack.decisions_table)["Items"]
        assert sorted((i["executionName"]["S"], i["decision"]["S"]) for i in items) == [
            ("e1", "REJECT"), ("e3", "APPROVE"), ("e4", "REJECT")]  # fmt: skip
    assert "dynamodb.journal: the record at byte" in caplog.text


def test_the_state_directory_says_its_format(tmp_path):
    with LocalStack(StackOptions(state_dir=tmp_path)):
        pass
    assert json.loads((tmp_path / "FORMAT").read_text())["format"] == "vidmod-state"


def test_a_multipart_upload_gets_the_same_checksum_as_moto_computes_holding_it_whole():
    from moto.s3.models import MultipartChecksumBuilder

    from vidmod.emulator.persistence.s3_store import _FullObjectChecksum

    parts = [bytes(range(256)) * 4096, b"second part", b"tail"]
    for algorithm in ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256", None):
        for kind in ("FULL_OBJECT", "COMPOSITE", None):
            whole, streaming = MultipartChecksumBuilder(algorithm, kind), _FullObjectChecksum(algorithm, kind)
            for part in parts:
                whole.addPart(part)
                streaming.addPart(part)
            assert streaming.build() == whole.build(), (algorithm, kind)


def test_a_large_object_is_read_back_whole_and_by_range_from_its_file(tmp_path):
    """GetObject sends a body over 1 MB from its file in chunks (moto would hold it whole in memory)."""
    body = bytes(range(256)) * (3 * 1024 * 1024 // 256 + 7)
    with LocalStack(StackOptions(state_dir=tmp_path)) as stack:
        s3, bucket = stack.client("s3"), stack.resources.bucket_name("ResultsBucket")
        s3.put_object(Bucket=bucket, Key="big.bin", Body=body)
        whole = s3.get_object(Bucket=bucket, Key="big.bin")
        assert whole["ContentLength"] == len(body) and whole["Body"].read() == body
        part = s3.get_object(Bucket=bucket, Key="big.bin", Range="bytes=1048570-1048585")
        assert part["ContentRange"] == f"bytes 1048570-1048585/{len(body)}"
        assert part["Body"].read() == body[1048570:1048586]
        tail = s3.get_object(Bucket=bucket, Key="big.bin", Range="bytes=-10")["Body"].read()
        assert tail == body[-10:]
