"""The bundled common-password list is the one its provenance names."""

from __future__ import annotations

import hashlib
import re

from app.auth.passwords import COMMON_PASSWORDS_FILE, common_password_match, common_passwords


def test_the_list_matches_its_recorded_provenance() -> None:
    provenance = (COMMON_PASSWORDS_FILE.parent / "PROVENANCE.md").read_text()
    digest = hashlib.sha256(COMMON_PASSWORDS_FILE.read_bytes()).hexdigest()
    assert f"this file's sha256 is\n  `{digest}`" in provenance
    count = re.findall(r"([\d,]+) lower-case", provenance)[0]
    listed = common_passwords()
    assert len(listed) == int(count.replace(",", ""))
    assert {"123456", "password", "qwerty123456"} <= listed
    assert all(p == p.lower() for p in listed)


def test_what_a_password_is_matched_on() -> None:
    assert common_password_match("P@ssw0rd") == "p@ssw0rd"
    assert common_password_match("monkey!!!!1234") == "monkey"
    assert common_password_match("dragondragondragon") == "dragon"
    assert common_password_match("a1!") is None  # too short a core to be a listed password
    assert common_password_match("correct horse battery staple") is None
