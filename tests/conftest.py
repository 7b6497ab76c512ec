"""Shared fixtures. The Kafka tests use a real Apache Kafka broker: the one named by
STREAMRNN_TEST_KAFKA (host:port), or else a local KRaft broker started from the jars that
the package's Maven file (connectors/broker/pom.xml) fetches from Maven Central. If it cannot start, the tests fail: they never skip."""

import os

import pytest


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory):
    external = os.environ.get("STREAMRNN_TEST_KAFKA")
    if external:
        yield external
        return
    from connectors.local_broker import LocalBroker

    broker = LocalBroker(tmp_path_factory.mktemp("kafka")).start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def fresh_broker(tmp_path):
    """A broker of the test's own, for tests that stop and restart it."""
    from connectors.local_broker import LocalBroker

    broker = LocalBroker(tmp_path / "kafka").start()
    try:
        yield broker
    finally:
        broker.stop()
