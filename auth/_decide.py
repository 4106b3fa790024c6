"""Auth commands: validate against the state, return the event bodies to append (no I/O, no hashing).

Hashing happens before (the caller passes ``password_hash`` / ``token_sha256``),
so these functions stay instant and deterministic. Errors follow MLflow's
basic-auth app: an unknown user or grant is ``NotFoundError``, a taken name or
an existing grant ``AlreadyExistsError``, bad input ``ContractError``.
"""

from __future__ import annotations

from producer import auth_events as ae
from producer.errors import AlreadyExistsError, ContractError, NotFoundError
from producer.events import Body

from ._access import permission_named
from ._state import AuthState

__all__ = ["check_username", "check_password", "create_user", "update_password", "update_admin", "delete_user",
           "set_experiment_permission", "delete_experiment_permission", "set_model_permission",
           "delete_model_permission", "move_model_grants", "create_token", "revoke_token", "MIN_PASSWORD_LEN"]

MIN_PASSWORD_LEN = 8


def check_username(username: str) -> str:
    """A username usable in HTTP Basic: non-empty, no ':' and no control characters, at most 256 characters."""
    if not isinstance(username, str) or not username.strip():
        raise ContractError("Username cannot be empty.")
    if ":" in username or any(ord(c) < 32 or ord(c) == 127 for c in username):
        raise ContractError("Username cannot contain ':' or control characters (it travels in HTTP Basic).")
    if len(username) > ae.MAX_USERNAME_LEN:
        raise ContractError(f"Username longer than {ae.MAX_USERNAME_LEN} characters.")
    return username


def check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LEN:
        raise ContractError(f"Password must be at least {MIN_PASSWORD_LEN} characters long.")
    if len(password) > 1024:
        raise ContractError("Password longer than 1024 characters.")
    return password


def _user(state: AuthState, username: str) -> None:
    if username not in state.users:
        raise NotFoundError(f"User with username={username} not found")


def create_user(state: AuthState, username: str, password_hash: str, *, is_admin: bool = False) -> list[Body]:
    check_username(username)
    if username in state.users:
        raise AlreadyExistsError(f"User '{username}' already exists")
    return [ae.UserCreated(username=username, password_hash=password_hash, is_admin=is_admin)]


def update_password(state: AuthState, username: str, password_hash: str) -> list[Body]:
    _user(state, username)
    return [ae.UserPasswordUpdated(username=username, password_hash=password_hash)]


def update_admin(state: AuthState, username: str, is_admin: bool) -> list[Body]:
    _user(state, username)
    if type(is_admin) is not bool:
        raise ContractError("is_admin must be a boolean")
    if state.users[username].is_admin == is_admin:
        return []
    return [ae.UserAdminUpdated(username=username, is_admin=is_admin)]


def delete_user(state: AuthState, username: str, *, actor: str) -> list[Body]:
    _user(state, username)
    if username == actor:
        raise ContractError("Users cannot delete their own account. Ask another admin to delete this user instead.")
    return [ae.UserDeleted(username=username)]


def _id(value: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ContractError(f"Missing value for required parameter '{what}'.")
    return value


def set_experiment_permission(state: AuthState, experiment_id: str, username: str, permission: str, *,
                              create: bool) -> list[Body]:
    """``create``: MLflow's create (the grant must not exist); else update (it must)."""
    _id(experiment_id, "experiment_id")
    _user(state, username)
    permission_named(permission)
    exists = (experiment_id, username) in state.experiment_permissions
    if create and exists:
        raise AlreadyExistsError(f"Experiment permission (experiment_id={experiment_id}, username={username}) "
                                 "already exists")
    if not create and not exists:
        raise NotFoundError(f"Experiment permission with experiment_id={experiment_id} and username={username} "
                            "not found")
    return [ae.ExperimentPermissionSet(experiment_id=experiment_id, username=username, permission=permission)]


def delete_experiment_permission(state: AuthState, experiment_id: str, username: str) -> list[Body]:
    _user(state, username)
    if (experiment_id, username) not in state.experiment_permissions:
        raise NotFoundError(f"Experiment permission with experiment_id={experiment_id} and username={username} "
                            "not found")
    return [ae.ExperimentPermissionDeleted(experiment_id=experiment_id, username=username)]


def set_model_permission(state: AuthState, name: str, username: str, permission: str, *,
                         create: bool) -> list[Body]:
    _id(name, "name")
    _user(state, username)
    permission_named(permission)
    exists = (name, username) in state.model_permissions
    if create and exists:
        raise AlreadyExistsError(f"Registered model permission (name={name}, username={username}) already exists")
    if not create and not exists:
        raise NotFoundError(f"Registered model permission with name={name} and username={username} not found")
    return [ae.RegisteredModelPermissionSet(name=name, username=username, permission=permission)]


def delete_model_permission(state: AuthState, name: str, username: str) -> list[Body]:
    _user(state, username)
    if (name, username) not in state.model_permissions:
        raise NotFoundError(f"Registered model permission with name={name} and username={username} not found")
    return [ae.RegisteredModelPermissionDeleted(name=name, username=username)]


def move_model_grants(state: AuthState, old_name: str, new_name: str) -> list[Body]:
    """After a registered model's rename, its grants follow it (as MLflow's app does): each becomes a grant
    on the new name, and the old name's grant is removed (a later model of the old name starts bare)."""
    out: list[Body] = []
    for (name, username), permission in sorted(state.model_permissions.items()):
        if name == old_name:
            out.append(ae.RegisteredModelPermissionSet(name=new_name, username=username, permission=permission))
            out.append(ae.RegisteredModelPermissionDeleted(name=old_name, username=username))
    return out


def create_token(state: AuthState, username: str, token_id: str, name: str, token_sha256: str) -> list[Body]:
    _user(state, username)
    if len(name) > 256:
        raise ContractError("token name longer than 256 characters")
    return [ae.ApiTokenCreated(token_id=token_id, username=username, name=name, token_sha256=token_sha256)]


def revoke_token(state: AuthState, token_id: str) -> list[Body]:
    if token_id not in state.tokens:
        raise NotFoundError(f"API token {token_id!r} not found (or already revoked)")
    return [ae.ApiTokenRevoked(token_id=token_id)]
