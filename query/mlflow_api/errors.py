"""MLflow's error contract: ``{"error_code": ..., "message": ...}`` with MLflow's HTTP statuses.

The stock client turns the body into an ``MlflowException`` carrying
``error_code``; scripts branch on it (``RESOURCE_DOES_NOT_EXIST`` after
``get_experiment_by_name``, ``RESOURCE_ALREADY_EXISTS`` on a second
``create_registered_model``), so the codes matter as much as the statuses.
"""

from __future__ import annotations

from producer.errors import (
    AlreadyExistsError,
    ConflictError,
    ContractError,
    NotFoundError,
    PermissionDeniedError,
    RunledgerError,
    TransientError,
)
from registry import RemoteFileUriError

from ..artifacts import InvalidPathError

__all__ = ["MlflowError", "STATUS_OF", "mlflow_error_for", "invalid", "not_found", "already_exists"]

#: ``mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS`` for the codes runledger answers.
STATUS_OF: dict[str, int] = {
    "INTERNAL_ERROR": 500,
    "INVALID_STATE": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "RESOURCE_CONFLICT": 409,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_PARAMETER_VALUE": 400,
}


class MlflowError(RunledgerError):
    """An error answered in MLflow's shape; ``status`` follows ``error_code`` unless given."""

    def __init__(self, error_code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.status = status if status is not None else STATUS_OF.get(error_code, 500)

    def body(self) -> dict[str, str]:
        return {"error_code": self.error_code, "message": self.message}


def invalid(message: str) -> MlflowError:
    return MlflowError("INVALID_PARAMETER_VALUE", message)


def not_found(message: str) -> MlflowError:
    return MlflowError("RESOURCE_DOES_NOT_EXIST", message)


def already_exists(message: str) -> MlflowError:
    return MlflowError("RESOURCE_ALREADY_EXISTS", message)


def mlflow_error_for(exc: Exception) -> MlflowError:
    """Any runledger error (or an unexpected exception) as MLflow's error; never leaks a traceback."""
    if isinstance(exc, MlflowError):
        return exc
    if isinstance(exc, PermissionDeniedError):
        return MlflowError("PERMISSION_DENIED", str(exc))
    if isinstance(exc, NotFoundError):
        return not_found(str(exc))
    if isinstance(exc, AlreadyExistsError):
        return already_exists(str(exc))
    if isinstance(exc, InvalidPathError):  # mlflow server's exact words (its own tests compare them)
        return invalid(InvalidPathError.MLFLOW_MESSAGE)
    if isinstance(exc, ConflictError):  # an immutable param, a deleted run: MLflow answers 400 too
        return invalid(str(exc))
    if isinstance(exc, RemoteFileUriError):  # mlflow server answers it with a 500 (its tests check the status)
        return MlflowError("INTERNAL_ERROR", str(exc))
    if isinstance(exc, ContractError):
        return invalid(str(exc))
    if isinstance(exc, TransientError):
        return MlflowError("TEMPORARILY_UNAVAILABLE", str(exc))
    return MlflowError("INTERNAL_ERROR", f"internal error: {type(exc).__name__}")
