"""What a run says about itself: its counts, the metric beside the baseline's, the status
lines and the machine-readable status, and why a run that did not do its job failed."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class RunStats:
    events_in: int = 0
    predictions_out: int = 0
    dead_lettered: int = 0
    elapsed: float = 0.0

    @property
    def balanced(self) -> bool:
        return self.events_in == self.predictions_out + self.dead_lettered

    def summary(self, metric=None) -> str:
        rate = self.events_in / self.elapsed if self.elapsed > 0 else 0.0
        text = (f"events in: {self.events_in:,}  predictions out: {self.predictions_out:,}  "
                f"dead-lettered: {self.dead_lettered:,}  ({rate:,.0f} events/s)")
        if metric is not None and self.predictions_out:  # never a metric of no events
            text += f"\n{metric}"
        return text


class RunReport:
    """The reports of a :class:`~streamrnn.runner.Runner` (its ``stats``, ``metric``,
    ``baseline``, ``dead_reasons``, ``fields_seen`` and ``lag``)."""

    def metric_report(self) -> str | None:
        """The metric, beside the baseline's on the same events."""
        if self.metric is None:
            return None
        text = str(self.metric)
        if self.baseline is not None and self.stats.predictions_out:
            ours, theirs = self.metric.get(), self.baseline.metric.get()
            better = ours > theirs if self.metric.bigger_is_better else ours < theirs
            theirs_text = str(self.baseline.metric).split(": ", 1)[-1]  # in the metric's own format
            text += (f"   ({self.baseline.name} on the same events: {theirs_text}; "
                     f"the model is {'better' if better else 'not better'})")
        return text

    def status(self, rate: float | None = None) -> dict:
        """The run's figures as plain data (``--log-format json``)."""
        s = self.stats
        out = {"events_in": s.events_in, "predictions_out": s.predictions_out, "dead_lettered": s.dead_lettered,
               "events_per_second": round(s.events_in / s.elapsed if rate is None and s.elapsed else rate or 0.0, 1),
               "dead_lettered_by_reason": dict(self.dead_reasons.most_common(10))}
        if self.lag:
            out["lag"] = {f"{t}/{p}": n for (t, p), n in self.lag.items()}
        if self.metric is not None and s.predictions_out:
            out["metric"] = {"name": type(self.metric).__name__, "value": self.metric.get()}
            if self.baseline is not None:
                out["baseline"] = {"name": self.baseline.name, "value": self.baseline.metric.get()}
        return out

    def status_line(self, rate: float) -> str:
        s = self.stats
        text = (f"streamrnn: {s.events_in:,} events in, {s.predictions_out:,} predicted, {s.dead_lettered:,} "
                f"dead-lettered, {rate:,.0f} events/s")
        if self.lag:
            text += f", lag {sum(self.lag.values()):,}"
        if self.metric is not None and s.predictions_out:
            text += f"; {self.metric}"
        return text

    def dead_letter_report(self, top=3) -> str | None:
        """The most common reasons events were dead-lettered in this run, with counts."""
        if not self.dead_reasons:
            return None
        return "dead-lettered by reason: " + "; ".join(f"{reason} ({n:,})" for reason, n in
                                                       self.dead_reasons.most_common(top))

    def failure(self, max_dead_letter_ratio=0.5) -> str | None:
        """Why the run did not do its job (nothing predicted, or more than ``max_dead_letter_ratio``
        of the events dead-lettered), naming the commonest reason and the fields the records have;
        None if it did."""
        s = self.stats
        if not s.events_in:
            return None
        if not s.predictions_out:
            why = f"nothing was predicted: all {s.events_in:,} events were dead-lettered"
        elif s.dead_lettered > max_dead_letter_ratio * s.events_in:
            why = (f"{s.dead_lettered / s.events_in:.0%} of the events were dead-lettered "
                   f"(over --max-dead-letter-ratio {max_dead_letter_ratio:g})")
        else:
            return None
        if self.dead_reasons:
            reason, n = self.dead_reasons.most_common(1)[0]
            why += f"; most often: {reason} ({n:,} events)"
        if self.fields_seen is not None:
            why += f"; the records have the fields: {', '.join(self.fields_seen) or '(none)'}"
        return why
