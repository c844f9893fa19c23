"""boto3 clients for the local endpoint (it accepts any credentials) and the events it is driven with."""

from __future__ import annotations

import json

import boto3
from botocore.config import Config

REGION = "us-east-1"
DEFAULT_ENDPOINT = "http://127.0.0.1:4566"  # `vidmod local up` listens here unless told otherwise


def local_client(service: str, endpoint_url: str, region: str = REGION):
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the local endpoint accepts any credentials
        config=Config(retries={"max_attempts": 2}),
    )


def http_api_event(
    method: str, path: str, body: object = None, request_id: str = "local", principal: str = "local"
) -> dict:
    """An API Gateway HTTP API (payload 2.0) event with an IAM authorizer, as the moderation API sends."""
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "isBase64Encoded": False,
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": "127.0.0.1"},
            "requestId": request_id,
            "stage": "$default",
            "authorizer": {"iam": {"userArn": principal}},
        },
        "body": None if body is None else json.dumps(body),
    }
