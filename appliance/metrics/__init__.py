"""Prometheus metrics, kept in a registry per application so two apps in one process never collide."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class HttpMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "appliance_http_requests", "HTTP requests served", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "appliance_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.rate_limited = Counter(
            "appliance_rate_limited", "Requests refused by the rate limit", ["scope"], registry=self.registry
        )
        self.sockets = Gauge(
            "appliance_websockets_open", "WebSocket connections of the real-time hub", ["kind"], registry=self.registry
        )
        self.frames = Counter(
            "appliance_websocket_frames", "Frames through the real-time hub", ["direction"], registry=self.registry
        )
        self.slow_clients = Counter(
            "appliance_websocket_slow_clients", "Hub clients disconnected for not reading their frames",
            registry=self.registry,
        )  # fmt: skip

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
