"""Analytical SQL over runledger's documented views, guarded in depth (``POST /api/v1/sql``).

Pure steps: :mod:`.lexer` (one SELECT, nothing around it) and :mod:`.policy`
(walk the engine's parse tree: views and allowlisted functions only).
Engine step: :mod:`.engine` (read-only, limited session inside a sandbox
database of pass-through views). :mod:`.service` chains them.
See docs/SQL.md for the views and examples.
"""

from .errors import SqlEngineError, SqlLimitExceeded, SqlRefused
from .lexer import precheck
from .policy import Policy, check_ast, function_allowed
from .service import FORMATS, PUBLIC_VIEWS, SqlResult, SqlService, install_sandbox

__all__ = [
    "FORMATS",
    "PUBLIC_VIEWS",
    "Policy",
    "SqlEngineError",
    "SqlLimitExceeded",
    "SqlRefused",
    "SqlResult",
    "SqlService",
    "check_ast",
    "function_allowed",
    "install_sandbox",
    "precheck",
]
