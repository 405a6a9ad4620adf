"""The deployment package leaves out only what the Lambda runtime provides, and
carries the bytecode of what a cold start imports or binds to import on first use."""

from __future__ import annotations

import importlib.util
import marshal
import sys
import zipfile
from pathlib import Path

from chalicelib import first_use
from shophook.package import trim

KEPT = (
    "app.py",
    "chalicelib/first_use.py",
    "chalicelib/service/ingest.py",
    "chalicelib/service/console.py",
    "chalicelib/store/sessions.py",
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
# What the fake app imports at start: app.py itself and the ingest module; and
# a service it imports on first use, which imports one more module.
SOURCES = {
    "app.py": (
        b"import chalicelib.service.ingest\n"
        b"from chalicelib.first_use import OnFirstUse\n"
        b"console = OnFirstUse('chalicelib.service.console')\n"
    ),
    "chalicelib/first_use.py": Path(first_use.__file__).read_bytes(),
    "chalicelib/service/console.py": b"import chalicelib.store.sessions\n",
}
MODULE = b"VALUE = 1\n" * 100
TAG = sys.implementation.cache_tag
BYTECODE = (
    f"__pycache__/app.{TAG}.pyc",
    f"chalicelib/service/__pycache__/ingest.{TAG}.pyc",
    f"chalicelib/__pycache__/first_use.{TAG}.pyc",
    f"chalicelib/service/__pycache__/console.{TAG}.pyc",
    f"chalicelib/store/__pycache__/sessions.{TAG}.pyc",
)


def test_the_runtimes_own_libraries_are_left_out_and_what_a_cold_start_imports_is_compiled(
    tmp_path,
):
    package = tmp_path / "deployment.zip"
    with zipfile.ZipFile(package, "w") as built:
        for name in KEPT + LEFT_OUT:
            built.writestr(name, SOURCES.get(name, MODULE))
    before, after = trim(package)
    assert after < before
    with zipfile.ZipFile(package) as trimmed:
        assert sorted(trimmed.namelist()) == sorted(KEPT + BYTECODE)
        assert trimmed.read("app.py") == SOURCES["app.py"]
        compiled = trimmed.read(BYTECODE[1])
    # PEP 552: hash-based and unchecked, the source's hash, then the code.
    assert compiled[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(compiled[4:8], "little") == 1
    assert compiled[8:16] == importlib.util.source_hash(MODULE)
    namespace: dict = {}
    exec(marshal.loads(compiled[16:]), namespace)
    assert namespace["VALUE"] == 1
