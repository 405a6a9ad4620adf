"""The deployment package leaves out only what the Lambda runtime provides."""

from __future__ import annotations

import zipfile

from shophook.package import trim

KEPT = (
    "app.py",
    "chalicelib/service/ingest.py",
    "pynamodb/models.py",
    "requests/api.py",
    "urllib3/__init__.py",
    "dateutil/parser.py",
    "botocore_like/x.py",
)
LEFT_OUT = (
    "boto3/session.py",
    "botocore/client.py",
    "botocore/data/dynamodb/2012-08-10/service-2.json.gz",
    "botocore-1.44.8.dist-info/METADATA",
    "s3transfer/manager.py",
    "jmespath/parser.py",
    "jmespath-1.1.0.data/scripts/jp.py",
)


def test_the_runtimes_own_libraries_are_left_out_and_nothing_else(tmp_path):
    package = tmp_path / "deployment.zip"
    with zipfile.ZipFile(package, "w") as built:
        for name in KEPT + LEFT_OUT:
            built.writestr(name, "x" * 1000)
    before, after = trim(package)
    assert after < before
    with zipfile.ZipFile(package) as trimmed:
        assert sorted(trimmed.namelist()) == sorted(KEPT)
        assert trimmed.read("app.py") == b"x" * 1000
