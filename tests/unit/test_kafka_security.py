"""``kafka://`` targets with SASL / TLS: the pure parser, and what reaches aiokafka."""

from __future__ import annotations

import ssl

import pytest

from ingest.consumer import IngestConfig
from producer.errors import ContractError
from producer.kafka_security import KafkaSecurity, parse_kafka_target
from producer.kafka_transport import KafkaSettings


def test_plain_targets_are_unchanged() -> None:
    t = parse_kafka_target("kafka://a:9092,b:9092?acks=all")
    assert (t.bootstrap, t.topic, t.security, t.options) == ("a:9092,b:9092", None, KafkaSecurity(), {"acks": "all"})
    assert parse_kafka_target("a:9092").security.client_kwargs() == {}


def test_credentials_topic_and_scram_over_tls() -> None:
    t = parse_kafka_target("kafka://svc%40corp:p%3Ass%2Fw@k1:9093,k2:9093/team.events"
                           "?security_protocol=SASL_SSL&sasl_mechanism=scram-sha-512&acks=1&ssl_check_hostname=false")
    assert t.bootstrap == "k1:9093,k2:9093" and t.topic == "team.events" and t.options == {"acks": "1"}
    s = t.security
    assert (s.security_protocol, s.sasl_mechanism, s.sasl_username, s.sasl_password) == (
        "SASL_SSL", "SCRAM-SHA-512", "svc@corp", "p:ss/w")
    kw = s.client_kwargs()
    assert kw["sasl_plain_username"] == "svc@corp" and kw["sasl_plain_password"] == "p:ss/w"
    assert isinstance(kw["ssl_context"], ssl.SSLContext) and kw["ssl_context"].check_hostname is False
    assert "p:ss/w" not in repr(s)


def test_credentials_alone_mean_sasl_ssl_with_plain() -> None:
    s = parse_kafka_target("kafka://u:p@h:9092").security
    assert (s.security_protocol, s.sasl_mechanism) == ("SASL_SSL", "PLAIN")
    s = parse_kafka_target("kafka://u:p@h:9092?security_protocol=SASL_PLAINTEXT").security
    assert s.client_kwargs() == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
                                 "sasl_plain_username": "u", "sasl_plain_password": "p"}


@pytest.mark.parametrize("target", [
    "kafka://h:9092?security_protocol=SASL_SSL",  # no credentials
    "kafka://u:p@h:9092?security_protocol=PLAINTEXT",  # credentials that would go nowhere
    "kafka://u@h:9092",  # no password
    "kafka://u:p@h:9092?sasl_mechanism=GSSAPI",
    "kafka://h:9092?security_protocol=TLS",
    "kafka://h:9092?ssl_cafile=/ca.pem",  # TLS files without TLS
    "kafka://h:9092?security_protocol=SSL&ssl_keyfile=/k.pem",  # a key without its certificate
    "kafka://h:9092?security_protocol=SSL&ssl_check_hostname=maybe",
])
def test_refused_targets(target: str) -> None:
    with pytest.raises(ContractError):
        parse_kafka_target(target)


def test_the_producer_settings_and_the_ingest_worker_get_the_same_security() -> None:
    settings = KafkaSettings.parse("kafka://u:p@h:9093/t?security_protocol=SASL_PLAINTEXT&compression=gzip")
    assert settings.topic == "t" and settings.compression == "gzip" and settings.bootstrap == "h:9093"
    assert settings.producer_kwargs()["sasl_plain_password"] == "p"
    assert KafkaSettings.parse("kafka://u:p@h:9093/t", topic="other").topic == "other"  # keywords win
    config = IngestConfig(bootstrap=settings.bootstrap, security=settings.security)
    assert config.security.client_kwargs()["security_protocol"] == "SASL_PLAINTEXT"
