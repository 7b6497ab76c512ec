"""Kafka client settings, whichever client a worker uses: ``key=value`` options, properties files
(the place for credentials), ``STREAMRNN_KAFKA_<KEY>`` environment variables, and the subset each
kafka-python client takes. Errors never echo a value (it may be a secret)."""

from __future__ import annotations

import os

ENV_PREFIX = "STREAMRNN_KAFKA_"
# streamrnn's own variables under the prefix, which are not client settings: the brokers of
# kafka:///TOPIC, the client library, and where the development broker's jars are
OWN_VARIABLES = {ENV_PREFIX + name for name in ("BOOTSTRAP_SERVERS", "CLIENT", "HOME")}
_INT_OPTIONS = {"request_timeout_ms", "session_timeout_ms", "heartbeat_interval_ms", "max_poll_records",
                "max_poll_interval_ms", "linger_ms", "batch_size", "retries", "fetch_max_bytes",
                "max_partition_fetch_bytes", "max_request_size", "metadata_max_age_ms", "reconnect_backoff_ms",
                "reconnect_backoff_max_ms", "retry_backoff_ms", "api_version_auto_timeout_ms"}


def parse_option(text: str) -> tuple[str, object]:
    """``key=value`` -> (key, value), with integers and booleans converted."""
    key, sep, value = text.partition("=")
    if not sep:  # the text may be a secret typed in the wrong place: never echo it
        raise ValueError(f"expected a Kafka setting as key=value, got text without '=' ({len(text)} characters)")
    key = key.strip()
    key = key if "." in key else key.replace("-", "_").lower()
    value = value.strip()
    if key in _INT_OPTIONS or value.isdigit():
        try:
            return key, int(value)
        except ValueError:
            raise ValueError(f"Kafka setting {key} must be an integer") from None
    if value.lower() in ("true", "false"):
        return key, value.lower() == "true"
    return key, value


# librdkafka / Java client names a properties file may use -> kafka-python's
_FROM_PROPERTIES = {"sasl.username": "sasl_plain_username", "sasl.password": "sasl_plain_password",
                    "ssl.ca.location": "ssl_cafile", "ssl.certificate.location": "ssl_certfile",
                    "ssl.key.location": "ssl_keyfile", "ssl.key.password": "ssl_password"}


def read_client_config(path) -> dict:
    """Kafka client settings from a properties file (``key=value`` lines, ``#`` or ``!`` comments),
    the Kafka clients' convention for keeping credentials off the command line. Dotted names are
    read as kafka-python's (``security.protocol`` -> ``security_protocol``) where kafka-python
    knows them, and passed to librdkafka as they are otherwise."""
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

    known = set(KafkaConsumer.DEFAULT_CONFIG) | set(KafkaProducer.DEFAULT_CONFIG) | set(KafkaAdminClient.DEFAULT_CONFIG)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise ValueError(f"cannot read the Kafka config file {path!r}: {e.strerror}") from None
    out = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        if "=" not in line:
            raise ValueError(f"{path}, line {number}: expected key=value")
        key, value = parse_option(line)
        dotted = line.partition("=")[0].strip()
        if dotted in _FROM_PROPERTIES:
            key = _FROM_PROPERTIES[dotted]
        elif "." in dotted and dotted.replace(".", "_") in known:
            key = dotted.replace(".", "_")
        elif "." in dotted:
            key = dotted
        out[key] = value
    return out


def options_for(client_class, options: dict | None) -> dict:
    """The subset of ``options`` that ``client_class`` (KafkaConsumer, KafkaProducer,
    KafkaAdminClient) accepts: one set of settings serves every client of a worker. A setting no
    client knows is an error."""
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

    options = {k: v for k, v in (options or {}).items() if "." not in k}  # dotted: librdkafka's own
    known = set(KafkaConsumer.DEFAULT_CONFIG) | set(KafkaProducer.DEFAULT_CONFIG) | set(KafkaAdminClient.DEFAULT_CONFIG)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown Kafka client settings: {', '.join(unknown)}")
    return {k: v for k, v in options.items() if k in client_class.DEFAULT_CONFIG}


def client_options_from_env(environ=None) -> dict:
    """kafka-python options from ``STREAMRNN_KAFKA_SECURITY_PROTOCOL=SASL_SSL`` and the like."""
    environ = os.environ if environ is None else environ
    out = {}
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX) and name not in OWN_VARIABLES:
            k, v = parse_option(f"{name[len(ENV_PREFIX):]}={value}")
            out[k] = v
    return out
