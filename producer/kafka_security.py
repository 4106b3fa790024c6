"""Kafka targets with credentials: ``kafka://user:pass@host:9092,host2:9092/topic?security_protocol=...``.

:func:`parse_kafka_target` is pure (no aiokafka, no file access) and splits a target into the bootstrap
list, an optional topic (the path), the security settings (userinfo and the ``security_protocol``,
``sasl_mechanism``, ``ssl_*`` query keys) and the remaining query options (the producer's ``acks``,
``compression`` ...). :meth:`KafkaSecurity.client_kwargs` turns the security settings into aiokafka's
keyword arguments (building the SSL context is the only I/O: it reads the CA / certificate files), for
the producer, the ingest worker's consumer and the admin client alike.

* Userinfo without ``security_protocol`` means ``SASL_SSL`` (a password never goes out in clear text
  unless ``security_protocol=SASL_PLAINTEXT`` says so); without ``sasl_mechanism``, ``PLAIN``.
* Mechanisms: ``PLAIN``, ``SCRAM-SHA-256``, ``SCRAM-SHA-512``. Userinfo is percent-decoded.
* ``ssl_cafile`` / ``ssl_certfile`` / ``ssl_keyfile`` / ``ssl_check_hostname`` need an SSL protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote

from .errors import ContractError

__all__ = ["KafkaSecurity", "KafkaTarget", "parse_kafka_target", "SECURITY_KEYS", "PROTOCOLS", "MECHANISMS"]

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SECURITY_KEYS = frozenset({"security_protocol", "sasl_mechanism", "ssl_cafile", "ssl_certfile", "ssl_keyfile",
                           "ssl_check_hostname"})


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaSecurity:
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = ""
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_check_hostname: bool = True

    def __repr__(self) -> str:  # never print the password
        return (f"KafkaSecurity(security_protocol={self.security_protocol!r}, sasl_mechanism={self.sasl_mechanism!r}, "
                f"sasl_username={self.sasl_username!r}, sasl_password={'***' if self.sasl_password else ''!r}, "
                f"ssl_cafile={self.ssl_cafile!r})")

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for every aiokafka client (producer, consumer, admin)."""
        if self.security_protocol == "PLAINTEXT":
            return {}
        out: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL_"):
            out.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                       sasl_plain_password=self.sasl_password)
        if self.uses_ssl:
            import ssl

            context = ssl.create_default_context(cafile=self.ssl_cafile or None)
            if self.ssl_certfile:
                context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile or None)
            context.check_hostname = self.ssl_check_hostname
            out["ssl_context"] = context
        return out


class KafkaTarget(NamedTuple):
    bootstrap: str
    """``host:port[,host:port]`` as given (validated by the caller)."""
    topic: str | None
    """The path of the URI, if any."""
    security: KafkaSecurity
    options: dict[str, str]
    """Query keys that are not security settings, for the caller to interpret."""


def _bool(name: str, raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ContractError(f"Kafka setting {name} must be true or false, got {raw!r}")


def parse_kafka_target(target: str) -> KafkaTarget:
    """Split ``[kafka://][user:pass@]host:port[,...][/topic][?key=value&...]`` (see the module docstring)."""
    rest = target[len("kafka://"):] if target.startswith("kafka://") else target
    rest, _, query = rest.partition("?")
    userinfo, at, hosts = rest.rpartition("@")
    if not at:
        hosts, userinfo = rest, ""
    hosts, _, topic = hosts.partition("/")
    options = dict(parse_qsl(query, keep_blank_values=True))
    sec = {k: options.pop(k) for k in list(options) if k in SECURITY_KEYS}
    username, colon, password = userinfo.partition(":")
    username, password = unquote(username), unquote(password)
    if userinfo and (not username or not colon):
        raise ContractError("Kafka credentials in the URI must be user:password@ (percent-encode ':' '@' '/')")
    protocol = sec.get("security_protocol", "SASL_SSL" if username else "PLAINTEXT").upper()
    if protocol not in PROTOCOLS:
        raise ContractError(f"Kafka setting security_protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    mechanism = sec.get("sasl_mechanism", "PLAIN" if protocol.startswith("SASL_") else "").upper()
    if protocol.startswith("SASL_"):
        if mechanism not in MECHANISMS:
            raise ContractError(f"Kafka setting sasl_mechanism must be one of {', '.join(MECHANISMS)}, "
                                f"got {mechanism!r}")
        if not username or not password:
            raise ContractError(f"security_protocol={protocol} needs credentials: kafka://user:password@host:port")
    elif username or mechanism:
        raise ContractError(f"credentials and sasl_mechanism need a SASL security_protocol, not {protocol}")
    ssl_files = {k: sec.get(k, "") for k in ("ssl_cafile", "ssl_certfile", "ssl_keyfile")}
    check_hostname = _bool("ssl_check_hostname", sec["ssl_check_hostname"]) if "ssl_check_hostname" in sec else True
    if protocol not in ("SSL", "SASL_SSL") and (any(ssl_files.values()) or "ssl_check_hostname" in sec):
        raise ContractError(f"ssl_* settings need security_protocol=SSL or SASL_SSL, not {protocol}")
    if ssl_files["ssl_keyfile"] and not ssl_files["ssl_certfile"]:
        raise ContractError("ssl_keyfile needs ssl_certfile")
    security = KafkaSecurity(security_protocol=protocol, sasl_mechanism=mechanism, sasl_username=username,
                             sasl_password=password, ssl_check_hostname=check_hostname, **ssl_files)
    return KafkaTarget(hosts, unquote(topic) or None, security, options)
