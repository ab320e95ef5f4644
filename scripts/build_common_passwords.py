"""Rebuild app/auth/data/common-passwords.txt.gz from the Django wheel on PyPI.

The list is Django's (``CommonPasswordValidator``), copied byte for byte; provenance and hashes
are in app/auth/data/PROVENANCE.md. Needs pip and access to PyPI; Django is not installed.

Usage: python scripts/build_common_passwords.py
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

DJANGO_VERSION = "5.2.19"
WHEEL_SHA256 = "5965d974a5218a2b68a11dd1276434707f23886525c23f0598eccedaf4f4ca00"
LIST_SHA256 = "3c1baed62596de36860824eb3f436d5932d37ca8b06e59df78f5a44ec175afe4"
MEMBER = "django/contrib/auth/common-passwords.txt.gz"
TARGET = Path(__file__).resolve().parents[1] / "app" / "auth" / "data" / "common-passwords.txt.gz"


def main() -> int:
    """Download the wheel, check it and write the list; 0 on success."""
    with tempfile.TemporaryDirectory() as tmp:
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"]
        subprocess.run([*pip, f"django=={DJANGO_VERSION}", "-d", tmp], check=True)
        (wheel,) = Path(tmp).glob("*.whl")
        if hashlib.sha256(wheel.read_bytes()).hexdigest() != WHEEL_SHA256:
            print(f"unexpected sha256 of {wheel.name}", file=sys.stderr)
            return 1
        data = zipfile.ZipFile(wheel).read(MEMBER)
    if hashlib.sha256(data).hexdigest() != LIST_SHA256:
        print(f"unexpected sha256 of {MEMBER}", file=sys.stderr)
        return 1
    TARGET.write_bytes(data)
    print(f"wrote {TARGET} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
