"""runledger's producer: the SDK training code imports, and the event contract.

Light on purpose: importing it pulls in orjson and httpx only (aiokafka with the
``kafka`` extra, pandas/pyarrow for ``query_df``), never the server.

    import producer
    with producer.start_run(experiment="llm-sft", run_name="lora-r8") as run:
        run.log_params({"lr": 2e-5})
        run.log_metrics({"train/loss": 0.3}, step=0)
"""

from .errors import (
    BufferFullError,
    ConflictError,
    ContractError,
    NotFoundError,
    ParamConflictError,
    RunledgerError,
    TransientError,
)
from .query_client import query_df
from .run import Producer, Run, default_tracking_uri, flush, get_producer, start_run

__all__ = [
    "start_run",
    "Run",
    "Producer",
    "get_producer",
    "flush",
    "default_tracking_uri",
    "query_df",
    "RunledgerError",
    "ContractError",
    "ConflictError",
    "ParamConflictError",
    "NotFoundError",
    "TransientError",
    "BufferFullError",
]
