"""S3 request metrics: requests by operation, status and tenant; latency; bytes in and out;
requests in flight.

``GatewayMetrics.middleware`` wraps the gateway's handler (``huimin.observability`` installs
it). The handler only tags the request with what it learned (``OPERATION`` after routing,
``TENANT`` after authentication). Label values are bounded: operation names are the closed set
of ``gateway.operations`` classes plus "Unknown" (not routed: bad signature, malformed
request), status codes, tenant names (plus "anonymous"); never bucket or key names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import get_args

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway.operations import Operation

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

UNKNOWN_OPERATION = "Unknown"
ANONYMOUS_TENANT = "anonymous"
OPERATIONS = frozenset({cls.__name__ for cls in get_args(Operation)} | {UNKNOWN_OPERATION})

OPERATION = web.RequestKey("huimin_s3_operation", str)
TENANT = web.RequestKey("huimin_s3_tenant", str)

# 1 ms (a cached HEAD) .. 60 s (a multi-GiB object over a slow link).
REQUEST_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

CLIENT_CLOSED = 499  # nginx's code for "the client went away before the answer"

ADMIN_PREFIX = "/_huimin/"  # the gateway's own endpoints: not S3 requests


def sent_bytes(method: str, response: web.StreamResponse) -> int:
    """Body bytes the client gets for a response its handler completed.

    A prepared (streamed) response wrote ``content_length`` bytes or failed (then the handler
    raised); a HEAD answer announces a length but sends no body.
    """
    if method == "HEAD":
        return 0
    if response.content_length is not None:
        return response.content_length
    return response.body_length


@dataclass(frozen=True, slots=True)
class _Children:
    """The series one request updates, for one (operation, status, tenant)."""

    requests: Counter
    duration: Histogram
    received: Counter
    sent: Counter


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "huimin_s3_requests_total",
            "S3 requests answered, by operation, HTTP status and tenant.",
            ["operation", "status", "tenant"],
            registry=registry,
        )
        self.duration = Histogram(
            "huimin_s3_request_duration_seconds",
            "S3 request latency until the handler finished (streamed bodies included).",
            ["operation"],
            buckets=REQUEST_BUCKETS_S,
            registry=registry,
        )
        self.received = Counter(
            "huimin_s3_received_bytes_total",
            "Request body bytes received (as sent on the wire, aws-chunked framing included).",
            ["operation", "tenant"],
            registry=registry,
        )
        self.sent = Counter(
            "huimin_s3_sent_bytes_total",
            "Response body bytes sent.",
            ["operation", "tenant"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "huimin_s3_requests_in_flight",
            "S3 requests being served.",
            registry=registry,
        )
        # Label children by their label values: ``labels()`` takes a lock and validates the
        # values on every call; the sets are bounded (operations x statuses x tenants).
        self._children: dict[tuple[str, str, str], _Children] = {}

    def _series(self, operation: str, status: int, tenant: str) -> _Children:
        key = (operation, str(status), tenant)
        children = self._children.get(key)
        if children is None:
            children = self._children.setdefault(
                key,
                _Children(
                    requests=self.requests.labels(operation, key[1], tenant),
                    duration=self.duration.labels(operation),
                    received=self.received.labels(operation, tenant),
                    sent=self.sent.labels(operation, tenant),
                ),
            )
        return children

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        start = time.perf_counter()
        status = 500
        response: web.StreamResponse | None = None
        self.in_flight.inc()
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except (asyncio.CancelledError, ConnectionError):
            status = CLIENT_CLOSED
            raise
        finally:
            self.in_flight.dec()
            self.observe(request, status, time.perf_counter() - start, response)

    def observe(
        self,
        request: web.Request,
        status: int,
        seconds: float,
        response: web.StreamResponse | None,
    ) -> None:
        operation = request.get(OPERATION, UNKNOWN_OPERATION)
        if operation not in OPERATIONS:  # bounded no matter what a handler tags
            operation = UNKNOWN_OPERATION
        tenant = request.get(TENANT, ANONYMOUS_TENANT)
        series = self._series(operation, status, tenant)
        series.requests.inc()
        series.duration.observe(seconds)
        received = request.content.total_bytes
        if received:
            series.received.inc(received)
        sent = sent_bytes(request.method, response) if response is not None else 0
        if sent:
            series.sent.inc(sent)
