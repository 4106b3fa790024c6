"""Credentials the producer sends to a runledger server with auth on: the stock MLflow client's variables.

``MLFLOW_TRACKING_TOKEN`` (an API token: ``Authorization: Bearer``), else ``MLFLOW_TRACKING_USERNAME`` +
``MLFLOW_TRACKING_PASSWORD`` (HTTP Basic). Read when a connection is made, so a job can set them before
``start_run``. Nothing set: no header (a server without auth).
"""

from __future__ import annotations

import base64
import os

__all__ = ["auth_headers"]


def auth_headers() -> dict[str, str]:
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password is not None:
        raw = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}
    return {}
