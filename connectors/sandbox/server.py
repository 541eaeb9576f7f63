"""The HTTPS server every emulator runs in: routing, latency, fault injection and the write log.

Each emulator subclasses `Emulator` and implements `handle()`. Tests in the same process reach the
emulator object directly; tests in another process (a Celery worker's) use the control endpoints
under `/__sandbox/`: `GET writes`, `GET stats`, `POST faults` with {"kind", "count", "after",
"path", "method", ...}, `GET faults` (those still pending), `POST reset`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import ssl
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from connectors.sandbox.seeding import SamplePeople, SeededCompanies
from connectors.sandbox.tls import SandboxCertificates

CONTROL_PREFIX = "/__sandbox/"
# Faults every emulator applies the same way, before its own routing.
GENERIC_FAULTS = ("server_error", "slow", "drop_connection")


@dataclass(frozen=True)
class Request:
    """One HTTP request as an emulator sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # keys lower-cased
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None

    def json_or_none(self) -> Any:
        """The body parsed as JSON; None when it is empty or not JSON (the caller refuses it)."""
        try:
            return self.json()
        except ValueError:
            return None

    def param(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter `name`."""
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    """What an emulator answers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        """The body as bytes: JSON for dicts and lists, UTF-8 for text."""
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass(frozen=True)
class WriteLogEntry:
    """One field write the emulator accepted: which record got which value, through which call."""

    object_type: str
    record_id: str
    field: str
    value: str | None
    call: int
    at: float


@dataclass
class Fault:
    """A fault to inject on `count` matching requests, once `after` matching requests passed.

    A request matches when `path` (a regular expression) is found in its path and `method` is
    its method; an unset one matches every request. So `after=2, path="/batch/update$"` makes
    exactly the third batch update from now fail, however long the calls before it take.
    """

    kind: str
    count: int = 1
    params: dict[str, Any] = field(default_factory=dict)
    after: int = 0
    path: str | None = None
    method: str | None = None
    # Matching requests that arrived since the fault was injected.
    seen: int = 0

    def matches(self, request: Request | None) -> bool:
        """Whether `request` (None: taken outside any request) is one this fault may meet."""
        if self.path is None and self.method is None:
            return True
        if request is None:
            return False
        if self.method is not None and request.method != self.method:
            return False
        return self.path is None or re.search(self.path, request.path) is not None

    def armed(self) -> bool:
        """Whether the `after` matching requests it lets pass have arrived."""
        return self.after == 0 or self.seen > self.after


class Faults:
    """Pending injected faults, taken one request at a time (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Fault] = []
        # The request each server thread is answering: emulators call take(kind) deep inside
        # handle(), and a fault limited to some paths must know which request it would meet.
        self._current = threading.local()

    def inject(
        self,
        kind: str,
        count: int = 1,
        *,
        after: int = 0,
        path: str | None = None,
        method: str | None = None,
        **params: Any,
    ) -> None:
        """Make `count` requests that check for `kind` fail that way, once `after` requests
        matching `path` and `method` passed (ValueError on a bad count, after or path)."""
        if count < 1:
            raise ValueError(f"fault {kind}: count must be at least 1, not {count}")
        if after < 0:
            raise ValueError(f"fault {kind}: after must be 0 or more, not {after}")
        if path is not None:
            try:
                re.compile(path)
            except re.error as error:
                message = f"fault {kind}: path {path!r} is not a regular expression: {error}"
                raise ValueError(message) from None
        with self._lock:
            upper = method.upper() if method else None
            self._pending.append(Fault(kind, count, params, after, path or None, upper))

    @contextmanager
    def serving(self, request: Request) -> Iterator[None]:
        """Count `request` for the faults waiting on it; faults taken meanwhile must match it."""
        with self._lock:
            for fault in self._pending:
                if fault.after and fault.matches(request):
                    fault.seen += 1
        self._current.request = request
        try:
            yield
        finally:
            self._current.request = None

    def take(self, kind: str) -> Fault | None:
        """Consume one occurrence of a pending `kind` fault that is armed for this request."""
        request: Request | None = getattr(self._current, "request", None)
        with self._lock:
            for fault in self._pending:
                if fault.kind == kind and fault.armed() and fault.matches(request):
                    fault.count -= 1
                    if fault.count == 0:
                        self._pending.remove(fault)
                    return Fault(kind, 1, dict(fault.params))
        return None

    def pending(self) -> list[Fault]:
        """Copies of the faults not yet met (all their occurrences), oldest first."""
        with self._lock:
            return [
                Fault(f.kind, f.count, dict(f.params), f.after, f.path, f.method, f.seen)
                for f in self._pending
            ]

    def clear(self) -> None:
        """Forget every pending fault."""
        with self._lock:
            self._pending.clear()


@dataclass
class CallCounts:
    """The calls a vendor's limits count: their moments in a sliding window, and today's total."""

    moments: deque[float] = field(default_factory=deque)
    daily: int = 0
    day: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())

    def forget_before(self, start: float) -> None:
        """Drop the moments before `start` (monotonic); a new UTC day starts the total over."""
        today = dt.datetime.now(dt.UTC).date()
        if today != self.day:
            self.day, self.daily = today, 0
        while self.moments and self.moments[0] <= start:
            self.moments.popleft()

    def clear(self) -> None:
        """Forget every call counted so far."""
        self.moments.clear()
        self.daily = 0


class Emulator(ABC):
    """A vendor API emulator: subclasses implement `handle` and the vendor-specific faults."""

    name: str = "emulator"
    # The vendor's limits and options a constructor may set by keyword: each is a class
    # attribute of the subclass holding the vendor's own value, which tests and benchmarks
    # change (a shorter rate window, say) rather than wait.
    settings: ClassVar[tuple[str, ...]] = ()

    def __init__(self, records: int = 0, latency: float = 0.0, **settings: object) -> None:
        """An emulator answering after `latency` seconds, with `records` records seeded (at the
        companies of connectors.sandbox.seeding) and the settings given (TypeError on others)."""
        for name in settings:
            if name not in self.settings:
                known = ", ".join(self.settings) or "none"
                raise TypeError(
                    f"{type(self).__name__} has no setting {name!r} (its settings: {known})"
                )
        self.latency = latency
        self.faults = Faults()
        self.lock = threading.RLock()
        self.writes: list[WriteLogEntry] = []
        self.calls: Counter[str] = Counter()
        self._call_number = 0
        self.base_url = ""
        self.seeded = SeededCompanies()
        for name, value in settings.items():
            setattr(self, name, value)
        self._setup()
        if records > 0:
            self._seed(records)

    # Optional, not abstract: an emulator without state of its own has nothing to set up.
    def _setup(self) -> None:  # noqa: B027
        """Make the vendor's own state once the settings are set (the constructor calls it)."""

    def _seed(self, records: int) -> None:
        """Add `records` records at the seeded companies, noting them in `self.seeded`."""
        raise TypeError(f"{type(self).__name__} seeds no records")

    def next_call(self, request: Request) -> int:
        """Count `request` (by method and path shape) and return its number in this run."""
        with self.lock:
            self._call_number += 1
            self.calls[f"{request.method} {self.route_name(request)}"] += 1
            return self._call_number

    def route_name(self, request: Request) -> str:
        """How `request` is counted in stats; subclasses may group paths that carry ids."""
        return request.path

    def log_write(
        self, object_type: str, record_id: str, field_name: str, value: str | None, call: int
    ) -> None:
        """Record that `record_id`'s field now holds `value` (tests count these)."""
        with self.lock:
            self.writes.append(
                WriteLogEntry(object_type, record_id, field_name, value, call, time.time())
            )

    def record(self, object_type: str, record_id: str) -> dict[str, Any]:
        """A copy of one stored record with every field, as the vendor would return it (KeyError
        for an object this emulator does not hold or a record it does not have)."""
        with self.lock:
            return self._stored(object_type, record_id)

    def _stored(self, object_type: str, record_id: str) -> dict[str, Any]:
        """`record`'s answer, under the lock."""
        raise KeyError(f"the {self.name} sandbox holds no {object_type} records")

    def reset(self) -> None:
        """Forget the write log, call counts, pending faults and what `forget_usage` forgets
        (records keep their values)."""
        with self.lock:
            self.writes.clear()
            self.calls.clear()
            self.faults.clear()
            self.forget_usage()

    # Optional, not abstract: an emulator that counts nothing of its own has nothing to forget.
    def forget_usage(self) -> None:  # noqa: B027
        """Forget the vendor's own counts and states, under the lock (`reset` calls it)."""

    @abstractmethod
    def handle(self, request: Request, call: int) -> Response:
        """Answer one vendor API request."""

    def describe(self) -> dict[str, Any]:
        """What a client needs to reach this emulator: base_url and credentials."""
        return {"base_url": self.base_url}

    # How the system holds `segsync demo`'s sample people (a marketing automation system); None:
    # the demo makes its records otherwise (a CRM's, in worker.demo.data) or has none for it.
    sample_people: ClassVar[SamplePeople | None] = None

    def add_records(self, object_type: str, rows: list[dict[str, Any]]) -> list[str]:
        """Create records of `object_type` with these fields; returns their ids, in row order."""
        raise NotImplementedError(f"{type(self).__name__} takes no records")

    def add_sample_records(self, object_type: str, rows: list[dict[str, Any]]) -> list[str]:
        """Create the demo sample's records as the vendor would hold them; their ids, in order.

        The rows are `add_records`' fields; an emulator overrides this where the sample's rows
        say more than fields (links the vendor keeps apart, records created over time).
        """
        return self.add_records(object_type, rows)

    def control(self, request: Request) -> Response:
        """The `/__sandbox/` endpoints: write log, stats, faults, reset."""
        action = request.path[len(CONTROL_PREFIX) :]
        if action == "writes" and request.method == "GET":
            with self.lock:
                return Response(body=[asdict(entry) for entry in self.writes])
        if action == "stats" and request.method == "GET":
            with self.lock:
                return Response(body={"calls": dict(self.calls), "writes": len(self.writes)})
        if action == "faults" and request.method == "POST":
            return self._inject(request)
        if action == "faults" and request.method == "GET":
            return Response(body=[asdict(fault) for fault in self.faults.pending()])
        if action == "reset" and request.method == "POST":
            self.reset()
            return Response(body={"reset": True})
        return Response(404, {"error": f"unknown sandbox control {request.method} {action}"})

    def _inject(self, request: Request) -> Response:
        """`POST /__sandbox/faults`: {"kind", "count", "after", "path", "method", params...}."""
        try:
            spec = request.json() or {}
        except ValueError:
            return Response(400, {"error": "a fault must be a JSON object"})
        if not isinstance(spec, dict):
            return Response(400, {"error": "a fault must be a JSON object"})
        kind = spec.pop("kind", "")
        if not kind or not isinstance(kind, str):
            return Response(400, {"error": "a fault needs a kind"})
        options: dict[str, Any] = {}
        for name, wanted in (("count", int), ("after", int), ("path", str), ("method", str)):
            value = spec.pop(name, None)
            if value is None:
                continue
            if not isinstance(value, wanted) or isinstance(value, bool):
                message = (
                    f"fault {kind}: {name} must be {'an integer' if wanted is int else 'a string'}"
                )
                return Response(400, {"error": message})
            options[name] = value
        try:
            self.faults.inject(kind, **options, **spec)
        except ValueError as error:
            return Response(400, {"error": str(error)})
        return Response(body={"injected": kind, "count": 1} | options)


class _Handler(BaseHTTPRequestHandler):
    server: EmulatorServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY every keep-alive answer
    # stalls ~40 ms on delayed ACKs, and benchmarks would measure that stall.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        # Requests carry tokens in headers and query strings: the sandbox never logs them.
        return

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={key.lower(): value for key, value in self.headers.items()},
            body=body,
        )
        emulator = self.server.emulator
        if request.path.startswith(CONTROL_PREFIX):
            self._send(emulator.control(request))
            return
        call = emulator.next_call(request)
        with emulator.faults.serving(request):
            response = self._answer(emulator, request, call)
        if response is None:
            self.close_connection = True
            return
        self._send(response)

    def _answer(self, emulator: Emulator, request: Request, call: int) -> Response | None:
        """The generic faults, then the emulator's answer; None drops the connection."""
        if emulator.latency:
            time.sleep(emulator.latency)
        if (slow := emulator.faults.take("slow")) is not None:
            time.sleep(float(slow.params.get("seconds", 2.0)))
        if emulator.faults.take("drop_connection") is not None:
            return None
        if (error := emulator.faults.take("server_error")) is not None:
            status = int(error.params.get("status", 503))
            return Response(status, {"error": "injected server error"})
        try:
            return emulator.handle(request, call)
        except Exception as exc:  # an emulator bug must surface as a 500, not a hung client
            return Response(500, {"error": f"emulator failure: {type(exc).__name__}: {exc}"})

    def _send(self, response: Response) -> None:
        payload = response.encoded()
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


class EmulatorServer(ThreadingHTTPServer):
    """One emulator served over HTTPS on 127.0.0.1 in a background thread."""

    daemon_threads = True

    def __init__(self, emulator: Emulator, certificates: SandboxCertificates, port: int = 0):
        super().__init__(("127.0.0.1", port), _Handler)
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(certificates.server_certificate, certificates.server_key)
        self.emulator = emulator
        emulator.base_url = f"https://127.0.0.1:{self.server_address[1]}"
        self._thread: threading.Thread | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        # The TLS handshake happens in the request's own thread (finish_request), so one slow or
        # broken client never holds up the accept loop.
        connection, address = self.socket.accept()
        wrapped = self._tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return wrapped, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return  # a client that does not trust the CA, or went away: nothing to serve
        super().finish_request(request, client_address)

    def start(self) -> None:
        """Serve in a daemon thread until `stop()`."""
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox-{self.emulator.name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
