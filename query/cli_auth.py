"""``runledger auth``: manage users and tokens on the data folder directly (the server stopped: chDB admits
one process per folder), e.g. to create the first admin without putting a password in the environment::

    runledger auth create-user alice --admin          # asks for the password (or --password-stdin)
    runledger auth create-token ci-bot --name nightly # prints the token once
    runledger auth list-users

On a running server use its API instead (``/api/2.0/mlflow/users/...``, ``/api/v1/auth/tokens``; docs/AUTH.md).
Changes are auth events like any other, with the actor ``runledger-cli:<os user>``.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import TYPE_CHECKING

from .cli import add_common, settings_from_args

if TYPE_CHECKING:
    from .auth import AuthService
    from .services import Services

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("auth", help="manage users and API tokens in the data folder (server stopped)")
    ops = p.add_subparsers(dest="auth_command", required=True, metavar="ACTION")
    c = ops.add_parser("create-user", help="create a user (asks for the password)")
    c.add_argument("username")
    c.add_argument("--admin", action="store_true", help="make the user an admin")
    c.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add_common(c)
    c.set_defaults(func=_create_user)
    t = ops.add_parser("create-token", help="create an API token for a user and print it (once)")
    t.add_argument("username")
    t.add_argument("--name", default="", help="what the token is for (e.g. ci, nightly)")
    add_common(t)
    t.set_defaults(func=_create_token)
    ls = ops.add_parser("list-users", help="list users")
    add_common(ls)
    ls.set_defaults(func=_list_users)


def _actor() -> str:
    try:
        return f"runledger-cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"runledger-cli:uid-{os.getuid()}"


def _service(args: argparse.Namespace) -> tuple[Services, AuthService]:
    from .auth import auth_service, start_auth
    from .services import build_services

    services = build_services(settings_from_args(args), (start_auth,))
    return services, auth_service(services)


def _create_user(args: argparse.Namespace) -> int:
    import auth

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
        if getpass.getpass("again: ") != password:
            print("runledger: error: the passwords differ", file=sys.stderr)
            return 2
    auth.check_username(args.username)
    digest = auth.hash_password(auth.check_password(password))
    services, service = _service(args)
    try:
        service.execute(lambda s: auth.create_user(s, args.username, digest, is_admin=args.admin), _actor())
    finally:
        services.close()
    print(f"created {'admin ' if args.admin else ''}user {args.username}")
    return 0


def _create_token(args: argparse.Namespace) -> int:
    import auth
    from producer.ids import new_id

    token, token_id = auth.new_token(), new_id()
    services, service = _service(args)
    try:
        service.execute(lambda s: auth.create_token(s, args.username, token_id, args.name, auth.token_sha256(token)),
                        _actor())
    finally:
        services.close()
    print(token)
    print(f"(token id {token_id}: shown once, only its hash is kept)", file=sys.stderr)
    return 0


def _list_users(args: argparse.Namespace) -> int:
    services, service = _service(args)
    try:
        for u in sorted(service.state().users.values(), key=lambda u: u.user_id):
            print(f"{u.user_id}\t{u.username}\t{'admin' if u.is_admin else ''}")
    finally:
        services.close()
    return 0
