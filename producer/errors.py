"""The error hierarchy every runledger package raises from.

::

    RunledgerError
    ├── ContractError          an event or batch that does not match the contract
    │   └── UnknownSchemaVersion / UnknownEventType
    ├── ConflictError          a command that contradicts recorded state
    │   ├── ParamConflictError (a param re-logged with a different value)
    │   ├── AlreadyExistsError (a name that is taken)
    │   └── InvalidStateError  (a write to a deleted run or experiment)
    ├── NotFoundError          an entity that does not exist (or not at that time)
    ├── UnauthenticatedError   no credentials, or wrong ones (HTTP 401)
    ├── PermissionDeniedError  an authenticated caller may not do this (HTTP 403)
    ├── TransientError         worth retrying: network down, broker unavailable, 5xx
    └── BufferFullError        the producer buffer stayed full past its deadline

Adapters map third-party exceptions into these at the boundary
(``raise TransientError(...) from exc``); callers decide retry vs dead-letter
by type, never by message.
"""

from __future__ import annotations

__all__ = [
    "RunledgerError",
    "ContractError",
    "UnknownSchemaVersion",
    "UnknownEventType",
    "ConflictError",
    "ParamConflictError",
    "AlreadyExistsError",
    "InvalidStateError",
    "NotFoundError",
    "UnauthenticatedError",
    "PermissionDeniedError",
    "TransientError",
    "BufferFullError",
]


class RunledgerError(Exception):
    """Base of every error runledger raises on purpose."""


class ContractError(RunledgerError, ValueError):
    """An event does not match the wire contract; the message says which field and why."""


class UnknownSchemaVersion(ContractError):
    """The envelope names a schema version this build never produced."""


class UnknownEventType(ContractError):
    """The envelope names an event type this build does not know."""


class ConflictError(RunledgerError):
    """A command contradicts state that is already recorded."""


class ParamConflictError(ConflictError):
    """A param was logged again for a run with a different value (params are immutable)."""


class AlreadyExistsError(ConflictError):
    """The name (of an experiment, a registered model) is already taken."""


class InvalidStateError(ConflictError):
    """The entity exists but is not in a state that allows the command (e.g. it is deleted)."""


class NotFoundError(RunledgerError, LookupError):
    """The entity does not exist (or did not exist at the requested time)."""


class UnauthenticatedError(RunledgerError):
    """The request carries no credentials, or credentials that do not verify."""


class PermissionDeniedError(RunledgerError):
    """The caller is known but lacks the permission the action needs."""


class TransientError(RunledgerError):
    """A failure worth retrying later: the backend is unreachable or overloaded."""


class BufferFullError(RunledgerError):
    """The producer buffer stayed full for longer than ``block_timeout_s``."""
