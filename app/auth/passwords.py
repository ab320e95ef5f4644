"""Password policy: 12 to 1024 characters, and not a common password.

Length alone lets through ``password1234`` or ``qwertyuiop123``: attackers try leaked passwords
first, whatever their length. A password is refused when, lower-cased and stripped of
surrounding blanks, it

* is on the bundled list of common passwords (``data/common-passwords.txt.gz``: the 19,640
  passwords of Django's ``CommonPasswordValidator``, collected from public breaches; provenance
  in ``data/PROVENANCE.md``),
* is such a password with digits, punctuation or blanks added before or after
  (``password123456!``), or
* repeats such a password (``qwertyqwertyqwerty``).

The refusal is a 422 ``invalid_input`` that says why and what to do instead.
"""

from __future__ import annotations

import gzip
import string
from functools import lru_cache
from pathlib import Path

from app.core.errors import InvalidInput

MAX_PASSWORD_CHARS = 1024
MIN_PASSWORD_CHARS = 12
COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent / "data" / "common-passwords.txt.gz"
# Shorter cores are ordinary fragments ("a1", "x!"), not a password with characters added.
MIN_CORE_CHARS = 4
_PADDING = string.digits + string.punctuation + string.whitespace


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The bundled common passwords, lower-case (read once per process, about 1 MB)."""
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as handle:
        return frozenset(line.strip() for line in handle if line.strip())


def _repeated_unit(text: str) -> str:
    """The shortest string that ``text`` repeats (``text`` itself when it repeats nothing)."""
    period = (text + text).find(text, 1)
    return text[:period] if 0 < period < len(text) else text


def common_password_match(password: str) -> str | None:
    """The common password ``password`` is built on, or None when it is not."""
    listed = common_passwords()
    normalized = password.strip().lower()
    if normalized in listed:
        return normalized
    core = normalized.strip(_PADDING)
    for candidate in (core, _repeated_unit(normalized), _repeated_unit(core)):
        if len(candidate) >= MIN_CORE_CHARS and candidate in listed:
            return candidate
    return None


def check_password_strength(password: str) -> None:
    """Raise :class:`InvalidInput` for a password that is too short, too long or too common."""
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidInput(
            f"A password needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters.",
            details={"reason": "length"},
        )
    if common_password_match(password) is not None:
        raise InvalidInput(
            "This password is too common: it is (or repeats, or pads with digits or symbols) "
            "one of the 20,000 passwords most often seen in leaked password lists, which "
            "attackers try first. Choose another, e.g. four or more unrelated words.",
            details={"reason": "common_password"},
        )
