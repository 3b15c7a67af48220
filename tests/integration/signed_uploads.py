"""Uploads in the signed layout (aurelius.core.signature_layout) and a service stack that
requires signing, for the integration tests on moto.

The redeployer checks presence only (the model server verifies), so the sidecar's body here is a
placeholder; tests/signing covers real bundles and `aurelius publish` uploads real ones.
"""

from __future__ import annotations

import hashlib
import io

from aurelius.core.decision import SIGNING_REQUIRED_PARAMETER
from aurelius.core.signature_layout import SHA256_METADATA_KEY, checksum_sha256, signature_key
from tests.helpers import BUCKET, KEY, SERVICE_STACK
from tests.integration.conftest import model_bytes


def upload(s3, version: int, *, signed: bool) -> str:
    """Upload model ``version`` with its digest in the metadata; its sidecar first when ``signed``."""
    body = model_bytes(version)
    digest = hashlib.sha256(body).hexdigest()
    if signed:
        s3.put_object(Bucket=BUCKET, Key=signature_key(KEY, digest), Body=b'{"placeholder": "bundle"}')
    return s3.put_object(
        Bucket=BUCKET,
        Key=KEY,
        Body=io.BytesIO(body),
        Metadata={SHA256_METADATA_KEY: digest},
        ChecksumSHA256=checksum_sha256(digest),
    )["VersionId"]


def require_signing(cfn) -> None:
    """What deploy-service.py does when the environment's settings say signing.required: true.

    The service template must declare SigningRequired (moto, like CloudFormation's templates,
    keeps only declared parameters), so this fails loudly if it does not."""
    stack = cfn.describe_stacks(StackName=SERVICE_STACK)["Stacks"][0]
    keys = [p["ParameterKey"] for p in stack["Parameters"]]
    assert SIGNING_REQUIRED_PARAMETER in keys, f"the service template declares no {SIGNING_REQUIRED_PARAMETER}"
    cfn.update_stack(
        StackName=SERVICE_STACK,
        UsePreviousTemplate=True,
        Parameters=[
            {"ParameterKey": k, "ParameterValue": "true"}
            if k == SIGNING_REQUIRED_PARAMETER
            else {"ParameterKey": k, "UsePreviousValue": True}
            for k in keys
        ],
        Capabilities=stack.get("Capabilities") or ["CAPABILITY_NAMED_IAM"],
    )
