"""The Prometheus metrics of `clonebench serve` (GET /metrics), in a registry of their own."""

from __future__ import annotations


class Metrics:
    def __init__(self, max_batch: int):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("clonebench_requests", "Synthesis requests by endpoint and status",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("clonebench_request_seconds", "Time from request to last audio byte",
                                 ["endpoint"], registry=self.registry)
        self.ttfa = Histogram("clonebench_time_to_first_audio_seconds", "Time from request to the first sentence",
                              registry=self.registry)
        self.rtf = Histogram("clonebench_rtf", "Synthesis seconds per audio second",
                             buckets=(0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10), registry=self.registry)
        self.queue = Gauge("clonebench_queue_sentences", "Sentences waiting for the inference worker",
                           registry=self.registry)
        self.batch = Histogram("clonebench_batch_size", "Sentences per batched pass",
                               buckets=tuple(range(1, max_batch + 1)), registry=self.registry)

    def exposition(self, queue_depth: int) -> bytes:
        """The text GET /metrics answers, with the queue depth as of now."""
        from prometheus_client import generate_latest

        self.queue.set(queue_depth)
        return generate_latest(self.registry)

    def served(self, endpoint: str, status: int, latency_s: float | None = None, ttfa_s: float | None = None,
               rtf: float | None = None) -> None:
        """One request's outcome; the timings count only for a request that was served (200)."""
        self.requests.labels(endpoint, str(status)).inc()
        if status != 200 or latency_s is None:
            return
        self.latency.labels(endpoint).observe(latency_s)
        if ttfa_s is not None:
            self.ttfa.observe(ttfa_s)
        if rtf is not None:
            self.rtf.observe(rtf)
