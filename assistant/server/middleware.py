"""Guard middleware: rate limit and API key on /v1, body size limit, safe headers.

It runs before routing, so a refused request never reaches the body parser or a route.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import threading
import time
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..settings import Settings
from .errors import ApiError
from .models import API_KEY_HEADER


class RateLimiter:
    """Token bucket per client: `per_minute` requests a minute, bursts up to that many."""

    def __init__(self, per_minute: int, max_clients: int = 10000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str, now: float | None = None) -> float:
        """0 when the request may go ahead, else the seconds to wait."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[client] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            if len(self._buckets) > self.max_clients:
                self._prune(now)
            return wait

    def _prune(self, now: float) -> None:
        full = [c for c, (t, last) in self._buckets.items()
                if t + (now - last) * self.rate >= self.capacity]  # fmt: skip
        for c in full:
            del self._buckets[c]
        while len(self._buckets) > self.max_clients:  # all busy: forget the oldest
            del self._buckets[min(self._buckets, key=lambda c: self._buckets[c][1])]


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _within(host: str, networks: Sequence[Network]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in net for net in networks)


def forwarded_hops(scope: Scope) -> list[str]:
    """The X-Forwarded-For addresses of a request, nearest last (every header line joined)."""
    headers = scope.get("headers", [])
    values = [v.decode("latin-1") for k, v in headers if k.lower() == b"x-forwarded-for"]
    return [hop.strip() for v in values for hop in v.split(",") if hop.strip()]


def client_address(scope: Scope, trusted: Sequence[Network]) -> str:
    """The address a request is counted against: the connecting peer, unless that peer is a
    trusted proxy; then the nearest X-Forwarded-For address that is not a trusted proxy.

    With no trusted proxies (the default) X-Forwarded-For is ignored, so a client cannot pick
    a new identity per request by sending the header.
    """
    client = str((scope.get("client") or ("unknown", 0))[0])
    if not trusted or not _within(client, trusted):
        return client
    for hop in reversed(forwarded_hops(scope)):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # not an address: keep the last one a trusted proxy vouched for
        client = hop
        if not _within(hop, trusted):
            break
    return client


class GuardMiddleware:
    """Before any route runs: rate limit and API key on /v1, body size limit, safe headers."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        per_minute = settings.rate_limit_per_minute
        self.limiter = RateLimiter(per_minute) if per_minute > 0 else None
        self.trusted = [ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        is_api = path == "/v1" or path.startswith("/v1/")
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}

        async def send_safe(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"x-content-type-options", b"nosniff"),
                         (b"referrer-policy", b"no-referrer")]  # fmt: skip
                if is_api:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        error = self._check(scope, headers, is_api)
        if error is None and scope["method"] in ("POST", "PUT", "PATCH"):
            body, error = await self._read_body(receive, headers)
            if error is None:
                receive = _replay(body, receive)
        if error is not None:
            await error.response()(scope, receive, send_safe)
            return
        await self.app(scope, receive, send_safe)

    def _check(self, scope: Scope, headers: dict[str, bytes], is_api: bool) -> ApiError | None:
        if not is_api:
            return None
        if self.limiter is not None:
            wait = self.limiter.check(client_address(scope, self.trusted))
            if wait > 0:
                return ApiError(
                    429,
                    "rate_limited",
                    f"more than {self.settings.rate_limit_per_minute} requests a minute "
                    "from this client",
                    hint=f"wait {math.ceil(wait)} s and try again",
                    headers={"Retry-After": str(math.ceil(wait))},
                )
        key = self.settings.api_key
        if key:
            given = headers.get(API_KEY_HEADER.lower(), b"")
            if not hmac.compare_digest(given, key.encode("utf-8")):
                return ApiError(
                    401,
                    "unauthorized",
                    "missing or wrong API key" if given else "this API requires an API key",
                    field=API_KEY_HEADER,
                    hint=f"send the key in the {API_KEY_HEADER} header",
                    headers={"WWW-Authenticate": API_KEY_HEADER},
                )
        return None

    async def _read_body(
        self, receive: Receive, headers: dict[str, bytes]
    ) -> tuple[bytes, ApiError | None]:
        limit = self.settings.max_body_bytes
        too_big = ApiError(
            413,
            "body_too_large",
            f"the request body is larger than {limit} bytes",
            field="body",
            hint="shorten the question or the history sent with it",
        )
        declared = headers.get("content-length")
        if declared is not None:
            try:
                if int(declared) > limit:
                    return b"", too_big
            except ValueError:
                return b"", ApiError(400, "bad_request", "invalid Content-Length header",
                                     field="Content-Length")  # fmt: skip
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"", too_big
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks), None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
