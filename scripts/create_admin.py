#!/usr/bin/env python
"""Create an admin user of the margin API (there are no default or built-in credentials).

Usage::

    python scripts/create_admin.py --username ops                 # prompts twice for the password
    printf '%s\\n' "$PW" | python scripts/create_admin.py --username ops --password-stdin
    ADMIN_PASSWORD=... python scripts/create_admin.py --username ops

Writes the user where the API reads users, chosen by the same settings and the same builder
as the app (:func:`app.container.build_user_data`): the ``users`` table on Supabase
when SUPABASE_URL and SUPABASE_KEY are set, otherwise the embedded database in DATA_DIR. The
password is stored only as an argon2id hash and must have 12 to 1024 characters.
Alternatively, set ADMIN_USERNAME and ADMIN_PASSWORD for the service: it creates that admin at
start-up when no admin exists yet.

Exit codes: 0 created; 1 refused (username taken, weak or mismatched password, user store
unreachable); 2 usage error.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from supabase import SupabaseException  # noqa: E402

from app.auth.security import hash_password  # noqa: E402
from app.auth.service import check_password_strength, check_username  # noqa: E402
from app.container import build_user_data  # noqa: E402
from app.core.db import Database  # noqa: E402
from app.core.errors import ServiceError  # noqa: E402
from app.core.settings import Settings  # noqa: E402


def _read_password(args: argparse.Namespace, stdin: TextIO) -> str:
    if args.password_stdin:
        return stdin.readline().rstrip("\r\n")
    from_env = os.environ.get("ADMIN_PASSWORD")
    if from_env:
        return from_env
    first = getpass.getpass("Password for the new admin: ")
    if getpass.getpass("Repeat the password: ") != first:
        raise ValueError("the passwords differ")
    return first


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None) -> int:
    """Parse arguments, create the admin, report; returns the exit code."""
    parser = argparse.ArgumentParser(description="Create an admin user of the margin API.")
    parser.add_argument("--username", default=os.environ.get("ADMIN_USERNAME"))
    parser.add_argument(
        "--password-stdin", action="store_true", help="Read the password from standard input."
    )
    parser.add_argument("--data-dir", type=Path, help="Override DATA_DIR.")
    args = parser.parse_args(argv)
    if not args.username:
        parser.print_usage(sys.stderr)
        print("error: give --username (or set ADMIN_USERNAME)", file=sys.stderr)
        return 2
    settings = Settings(data_dir=args.data_dir) if args.data_dir else Settings()
    try:
        username = check_username(args.username)
        password = _read_password(args, stdin or sys.stdin)
        check_password_strength(password)
    except (ValueError, ServiceError) as exc:
        message = exc.message if isinstance(exc, ServiceError) else str(exc)
        print(f"error: {message}", file=sys.stderr)
        return 1
    db = Database(settings.store_path)
    supabase = None
    try:
        _, users, supabase = build_user_data(settings, db)
        user = users.create(
            username=username,
            password_hash=hash_password(password),
            role="admin",
            client_id=None,
        )
    except ServiceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except SupabaseException as exc:  # e.g. a malformed SUPABASE_URL or SUPABASE_KEY
        print(f"error: cannot use Supabase: {exc}", file=sys.stderr)
        return 1
    finally:
        if supabase is not None:
            supabase.close()
        db.close()
    where = f"Supabase {settings.supabase_url}" if supabase is not None else settings.store_path
    print(f"created admin {user.username!r} (id {user.id}) in {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
