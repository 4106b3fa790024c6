"""A load generator that simulates a distributed training job against runledger or a stock MLflow server.

``workload.py``: what one rank process does (log K keys per step for S steps,
plus params and tags) through runledger's producer or the stock ``mlflow``
client, timing every ``log_metrics`` call. ``systems.py``: starting the
systems under test (``runledger serve`` embedded or over Kafka, ``mlflow
server`` on SQLite) and counting what became visible. ``job.py``: R rank
processes into one shared run (or one run per rank), from the first call
until every point is visible to a query.
"""
