"""`python -m shophook.package ZIP`: leave out of the functions' deployment.zip
what the Lambda Python runtime already provides (boto3 and botocore with their
own dependencies s3transfer and jmespath), 16 of its 27 MB. PynamoDB, the
Encryption SDK and Powertools then use the runtime's boto3, as AWS's own
functions do; the rest is kept at its pinned version."""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

PROVIDED_BY_THE_RUNTIME = ("boto3", "botocore", "s3transfer", "jmespath")
# The package's own folder, and its metadata and data folders (name-version.dist-info/).
_PROVIDED = re.compile(
    r"^(?:" + "|".join(PROVIDED_BY_THE_RUNTIME) + r")(?:/|-[^/]*\.(?:dist-info|data)/)"
)


def trim(package: Path) -> tuple[int, int]:
    """Rewrite `package` without what the runtime provides; return its size
    before and after, in bytes."""
    before = package.stat().st_size
    with tempfile.TemporaryDirectory() as scratch:
        trimmed = Path(scratch) / package.name
        with (
            zipfile.ZipFile(package) as source,
            zipfile.ZipFile(trimmed, "w", zipfile.ZIP_DEFLATED) as target,
        ):
            for entry in source.infolist():
                if not _PROVIDED.match(entry.filename):
                    target.writestr(entry, source.read(entry))
        shutil.move(trimmed, package)
    return before, package.stat().st_size


def main(argv: list[str]) -> int:
    for name in argv:
        before, after = trim(Path(name))
        print(f"{name}: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
