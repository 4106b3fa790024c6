"""Who may do what: MLflow's basic-auth permission model as plain functions.

Permissions (MLflow's names): ``READ`` (read), ``EDIT`` (read, update),
``MANAGE`` (read, update, delete, manage permissions), ``NO_PERMISSIONS``.
A user's permission on an experiment or a registered model is their explicit
grant, else the server's default permission. Admins may do everything.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from producer.errors import ContractError

from ._state import AuthState

__all__ = ["Permission", "PERMISSIONS", "READ", "EDIT", "MANAGE", "NO_PERMISSIONS", "Action", "ResourceKind",
           "Principal", "permission_named", "effective_permission", "may", "readable_filter", "ReadableSet"]

Action = Literal["read", "update", "delete", "manage"]
ResourceKind = Literal["experiment", "registered_model"]


class Permission(NamedTuple):
    name: str
    can_read: bool
    can_update: bool
    can_delete: bool
    can_manage: bool

    def allows(self, action: Action) -> bool:
        return {"read": self.can_read, "update": self.can_update, "delete": self.can_delete,
                "manage": self.can_manage}[action]


READ = Permission("READ", True, False, False, False)
EDIT = Permission("EDIT", True, True, False, False)
MANAGE = Permission("MANAGE", True, True, True, True)
NO_PERMISSIONS = Permission("NO_PERMISSIONS", False, False, False, False)
PERMISSIONS: dict[str, Permission] = {p.name: p for p in (READ, EDIT, MANAGE, NO_PERMISSIONS)}


def permission_named(name: str) -> Permission:
    """The permission called ``name``; ContractError (MLflow's INVALID_PARAMETER_VALUE) for anything else."""
    p = PERMISSIONS.get(name)
    if p is None:
        raise ContractError(f"Invalid permission '{name}'. Valid permissions are: {tuple(PERMISSIONS)}")
    return p


class Principal(NamedTuple):
    """Who a request comes from, once authenticated."""

    username: str
    is_admin: bool
    via: str
    """How they proved it: ``basic``, ``token``, or ``none`` (auth disabled)."""


def effective_permission(state: AuthState, username: str, kind: ResourceKind, resource_id: str,
                         default: Permission) -> Permission:
    """The user's explicit grant on the resource, else ``default`` (admins are handled by :func:`may`)."""
    grants = state.experiment_permissions if kind == "experiment" else state.model_permissions
    name = grants.get((resource_id, username))
    return default if name is None else PERMISSIONS[name]


def may(state: AuthState, principal: Principal, kind: ResourceKind, resource_id: str, action: Action,
        default: Permission) -> bool:
    """Whether ``principal`` may do ``action`` on the experiment / registered model ``resource_id``."""
    if principal.is_admin:
        return True
    return effective_permission(state, principal.username, kind, resource_id, default).allows(action)


class ReadableSet(NamedTuple):
    """Which resources of one kind a user may read, as a finite description.

    ``everything_except`` True: all resources but ``ids`` (the default permission reads, ``ids`` are
    explicitly NO_PERMISSIONS); False: exactly ``ids`` (the default does not read). Admins: all, no ids.
    """

    everything_except: bool
    ids: frozenset[str]

    def contains(self, resource_id: str) -> bool:
        return (resource_id in self.ids) != self.everything_except


def readable_filter(state: AuthState, principal: Principal, kind: ResourceKind, default: Permission) -> ReadableSet:
    """The resources of ``kind`` that ``principal`` may read (for row filtering: SQL, searches)."""
    if principal.is_admin:
        return ReadableSet(True, frozenset())
    grants = state.experiment_permissions if kind == "experiment" else state.model_permissions
    mine = {rid: PERMISSIONS[p] for (rid, user), p in grants.items() if user == principal.username}
    if default.can_read:
        return ReadableSet(True, frozenset(rid for rid, p in mine.items() if not p.can_read))
    return ReadableSet(False, frozenset(rid for rid, p in mine.items() if p.can_read))
