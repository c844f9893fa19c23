"""vidmod cloud create-flow-definition: the A2I UI is the ui/ file, unchanged, checked by RenderUiTemplate."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber

from vidmod import cloud

SETTINGS = cloud.FlowSettings(
    "vidmod-review",
    "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/team",
    "arn:aws:iam::123456789012:role/a2i",
    "s3://results/a2i-output",
)


@pytest.fixture
def sagemaker():
    return boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_creates_ui_from_the_template_file_then_the_flow_definition(sagemaker, tmp_path):
    template = tmp_path / "t.liquid.html"
    template.write_text("<crowd-form>{{ task.input.video.name }}</crowd-form>")
    with Stubber(sagemaker) as stub:
        stub.add_response(
            "render_ui_template",
            {"RenderedContent": "<crowd-form>sample.mp4</crowd-form>", "Errors": []},
            {"UiTemplate": {"Content": template.read_text()}, "Task": {"Input": ANY}, "RoleArn": SETTINGS.role_arn},
        )
        stub.add_response(
            "create_human_task_ui",
            {"HumanTaskUiArn": "arn:ui"},
            {"HumanTaskUiName": "vidmod-review-ui", "UiTemplate": {"Content": template.read_text()}},
        )
        stub.add_response(
            "create_flow_definition",
            {"FlowDefinitionArn": "arn:flow"},
            {
                "FlowDefinitionName": "vidmod-review",
                "RoleArn": SETTINGS.role_arn,
                "OutputConfig": {"S3OutputPath": "s3://results/a2i-output"},
                "HumanLoopConfig": ANY,
            },
        )
        assert cloud.create_flow_definition(sagemaker, SETTINGS, template) == "arn:flow"


def test_a_template_a2i_cannot_render_is_refused_before_anything_is_created(sagemaker, tmp_path):
    template = tmp_path / "t.liquid.html"
    template.write_text("{{ broken")
    with Stubber(sagemaker) as stub:
        stub.add_response(
            "render_ui_template",
            {"RenderedContent": "", "Errors": [{"Code": "TemplateError", "Message": "unexpected end of template"}]},
        )
        with pytest.raises(RuntimeError, match="unexpected end of template"):
            cloud.create_flow_definition(sagemaker, SETTINGS, template)
