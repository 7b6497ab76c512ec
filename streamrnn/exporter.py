"""Prometheus metrics of a running job (``streamrnn run --metrics-port PORT``).

The figures are read from the runner when Prometheus scrapes them, by a collector in the HTTP
server's thread: counting costs the event loop nothing. Served with ``prometheus_client``
(``pip install "streamrnn[metrics]"``).

=================================================  =========================================
``streamrnn_events_in_total``                      events read from the source
``streamrnn_predictions_total``                    predictions written
``streamrnn_dead_lettered_total{reason}``          events dead-lettered, by reason (this run)
``streamrnn_alerts_total``                         anomaly task: events scored at the threshold or above (this run)
``streamrnn_metric{metric}``                       the running metric of the predictions
``streamrnn_baseline_metric{metric,baseline}``     the baseline's, on the same events
``streamrnn_skipped_updates``                      updates skipped (a loss or gradient not finite)
``streamrnn_checkpoint_age_seconds``               time since the last checkpoint (or commit)
``streamrnn_models``                               models held (per-key runs: one per key)
``streamrnn_consumer_lag{topic,partition}``        events behind the end (Kafka; every --status-every s)
=================================================  =========================================
"""

from __future__ import annotations

import time


class RunCollector:
    """A prometheus_client collector over a :class:`~streamrnn.runner.Runner`."""

    def __init__(self, runner):
        self.runner = runner

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        r, s = self.runner, self.runner.stats
        yield CounterMetricFamily("streamrnn_events_in", "Events read from the source", value=s.events_in)
        yield CounterMetricFamily("streamrnn_predictions", "Predictions written", value=s.predictions_out)
        dead = CounterMetricFamily("streamrnn_dead_lettered", "Events dead-lettered, by reason (this run)",
                                   labels=["reason"])
        for reason, n in list(r.dead_reasons.items()):  # list(): one step under the GIL
            dead.add_metric([reason], n)
        yield dead
        if r.task == "anomaly":
            yield CounterMetricFamily("streamrnn_alerts", "Events scored at the threshold or above (this run)",
                                      value=r.alerts_out)
        if r.metric is not None and s.predictions_out:
            name = type(r.metric).__name__
            g = GaugeMetricFamily("streamrnn_metric", "The running metric of the predictions", labels=["metric"])
            g.add_metric([name], r.metric.get())
            yield g
            if r.baseline is not None:
                g = GaugeMetricFamily("streamrnn_baseline_metric", "The baseline's metric on the same events",
                                      labels=["metric", "baseline"])
                g.add_metric([name, r.baseline.name], r.baseline.metric.get())
                yield g
        yield GaugeMetricFamily("streamrnn_skipped_updates", "Updates skipped because the loss or a gradient was "
                                "not finite (models in memory)", value=sum(_skipped(m) for m in r.live_models()))
        yield GaugeMetricFamily("streamrnn_models", "Models held by this worker", value=r.model_count())
        lag = GaugeMetricFamily("streamrnn_consumer_lag", "Events behind the end of the partition, as last measured",
                                labels=["topic", "partition"])
        for (topic, partition), n in list(r.lag.items()):
            lag.add_metric([topic, str(partition)], n)
        yield lag
        yield GaugeMetricFamily("streamrnn_checkpoint_age_seconds", "Seconds since the last checkpoint",
                                value=time.monotonic() - r._last_checkpoint)


def _skipped(model) -> int:
    return int(getattr(model, "n_skipped_updates", 0) or 0)  # a River model that is not streamrnn's: 0


def serve(runner, port: int, address: str = "127.0.0.1"):
    """Serve ``runner``'s metrics on ``address:port`` (``/metrics``) from a daemon thread."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(RunCollector(runner))
    runner.track_lag = True  # measured in the run's own thread: the Kafka clients are not thread-safe
    return start_http_server(port, addr=address, registry=registry)
