"""`python -m shophook.package ZIP`: leave out of the functions' deployment.zip
what the Lambda Python runtime already provides (boto3 and botocore with their
own dependencies s3transfer and jmespath), 16 of its 27 MB. PynamoDB, the
Encryption SDK and Powertools then use the runtime's boto3, as AWS's own
functions do; the rest is kept at its pinned version.

And add the bytecode of every module a cold start imports: `chalice package`
ships sources only and /var/task is read-only, so without it each cold start
compiles all of them again. Only those (found by importing app.py from the
trimmed package), and the services app.py imports on their first use with what
they import: bytecode for every module would add 5 MB, and a module
imported later is compiled once per container. Hash-based and unchecked (the
package never changes once built), for the interpreter building it: build with
the runtime's Python (3.11), as the Makefile does; another interpreter's
bytecode would simply go unused."""

from __future__ import annotations

import importlib.util
import marshal
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from shophook.stage import deployed_environment

PROVIDED_BY_THE_RUNTIME = ("boto3", "botocore", "s3transfer", "jmespath")
# The package's own folder, and its metadata and data folders (name-version.dist-info/).
_PROVIDED = re.compile(
    r"^(?:" + "|".join(PROVIDED_BY_THE_RUNTIME) + r")(?:/|-[^/]*\.(?:dist-info|data)/)"
)
# And the services app.py binds to import on first use, with what they import.
_IMPORTED_FILES = """
import importlib, sys, app
from chalicelib.first_use import OnFirstUse
for bound in vars(app).values():
    if isinstance(bound, OnFirstUse):
        importlib.import_module(bound.__name__)
print("\\n".join(getattr(module, "__file__", None) or "" for module in sys.modules.values()))
"""


def trim(package: Path) -> tuple[int, int]:
    """Rewrite `package` without what the runtime provides, with the bytecode of
    what a cold start imports; return its size before and after, in bytes."""
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
        _add_bytecode(trimmed, Path(scratch) / "unpacked")
        shutil.move(trimmed, package)
    return before, package.stat().st_size


def imported_at_start(unpacked: Path) -> list[str]:
    """The package's modules that `import app` loads or binds to import on first
    use, as paths inside it."""
    done = subprocess.run(  # noqa: S603 - this interpreter, on a fixed script
        [sys.executable, "-c", _IMPORTED_FILES],
        cwd=unpacked,
        env={"AWS_DEFAULT_REGION": "us-east-1", **os.environ, **deployed_environment()},
        capture_output=True,
        text=True,
        check=True,
    )
    root = unpacked.resolve()
    inside = (Path(line).resolve() for line in done.stdout.splitlines() if line.endswith(".py"))
    # A module can be in sys.modules under two names (requests.packages.urllib3).
    return sorted(
        {path.relative_to(root).as_posix() for path in inside if path.is_relative_to(root)}
    )


def _add_bytecode(package: Path, unpacked: Path) -> None:
    with zipfile.ZipFile(package) as built:
        built.extractall(unpacked)
    with zipfile.ZipFile(package, "a", zipfile.ZIP_DEFLATED) as built:
        for name in imported_at_start(unpacked):
            source = (unpacked / name).read_bytes()
            path = PurePosixPath(name)
            cached = path.parent / "__pycache__" / f"{path.stem}.{sys.implementation.cache_tag}.pyc"
            built.writestr(str(cached), _hash_pyc(source, name))


def _hash_pyc(source: bytes, name: str) -> bytes:
    # PEP 552: magic, flags (hash-based, unchecked), the source's hash, the code.
    code = compile(source, name, "exec", dont_inherit=True)
    flags = (1).to_bytes(4, "little")
    return (
        importlib.util.MAGIC_NUMBER
        + flags
        + importlib.util.source_hash(source)
        + marshal.dumps(code)
    )


def main(argv: list[str]) -> int:
    for name in argv:
        before, after = trim(Path(name))
        print(f"{name}: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
