"""Write the CloudFormation template the SAM transform makes of a SAM template, each state machine's ASL inlined
as a ``Definition`` object (what cfn-lint's E3601 validates; SAM itself emits a ``Fn::Join`` it skips).

Run by aws-sam-cli's own interpreter (it ships ``samtranslator``; the project's environment does not):
``.venv-sam/bin/python tests/template/sam_transform.py IN.json OUT.json``. IN is a SAM template as JSON whose
state machines already carry ``Definition`` (see test_operations.py); no AWS call is made.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from samtranslator.translator.transform import transform

# Packaged artefacts: any valid S3 location will do for the transform.
ARTIFACT = "s3://vidmod-artifacts/code.zip"
URI_PROPERTIES = ("CodeUri", "ContentUri", "DefinitionUri")
# The managed policies SAM attaches (it would otherwise ask IAM for their ARNs).
MANAGED_POLICIES = {
    name: f"arn:aws:iam::aws:policy/{path}{name}"
    for name, path in {
        "AWSLambdaBasicExecutionRole": "service-role/",
        "AWSXrayWriteOnlyAccess": "",
        "AWSXRayDaemonWriteAccess": "",
    }.items()
}


class _PolicyLoader:
    def load(self) -> dict[str, str]:
        return MANAGED_POLICIES


def main(source: Path, target: Path) -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = json.loads(source.read_text())
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for key in URI_PROPERTIES:
            if isinstance(properties.get(key), str):
                properties[key] = ARTIFACT
    parameters = {"FlowDefinitionArn": "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/vidmod-review"}
    output = transform(template, parameters, _PolicyLoader())
    for resource in output["Resources"].values():
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            properties = resource["Properties"]
            separator, lines = properties.pop("DefinitionString")["Fn::Join"]
            properties["Definition"] = json.loads(separator.join(lines))
    target.write_text(json.dumps(output, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
