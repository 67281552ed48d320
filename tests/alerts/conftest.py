"""Real receivers on loopback for the notifiers: an HTTP server and an SMTP server.

Both record what they were sent and answer what a test chooses (an HTTP status per request,
an SMTP reply per recipient), so every notifier is tested against a real socket.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Received:
    path: str
    content_type: str
    body: Any


@dataclass
class HTTPReceiver:
    """Answers each POST with the next of `statuses` (the last one repeats), after `delay_s`."""

    url: str = ""
    statuses: list[int] = field(default_factory=lambda: [200])
    delay_s: float = 0.0
    requests: list[Received] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def next_status(self) -> int:
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]


class _RecordingServer(ThreadingHTTPServer):
    receiver: HTTPReceiver
    daemon_threads = False  # server_close() waits for every handler: no thread outlives a test

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout tests) breaks the pipe; keep it, quietly.
        error = sys.exc_info()[1]
        if error is not None:
            self.receiver.errors.append(error)


class _Handler(BaseHTTPRequestHandler):
    server: _RecordingServer

    def do_POST(self) -> None:
        receiver = self.server.receiver
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        receiver.requests.append(
            Received(self.path, self.headers.get("Content-Type", ""), json.loads(raw))
        )
        status = receiver.next_status()
        if receiver.delay_s:
            time.sleep(receiver.delay_s)  # the receiver is slow; the test waits on nothing
        answer = json.dumps({"status": "success" if status < 300 else "error"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_receiver() -> Iterator[HTTPReceiver]:
    """An HTTP server on 127.0.0.1, on a free port, recording every POST's JSON body."""
    receiver = HTTPReceiver()
    server = _RecordingServer(("127.0.0.1", 0), _Handler)
    server.receiver = receiver
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- SMTP ----------------------------------------------------------------------------------

SMTP_LOGIN = "alerts"
SMTP_PASSWORD = "s3cret"


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class SMTPReceiver:
    """Accepts mail for every address but those in `refuse` (address -> SMTP reply)."""

    port: int = 0
    mails: list[Mail] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    logins: list[str] = field(default_factory=list)

    @property
    def smarthost(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.mails.append(Mail(str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (SMTP_LOGIN, SMTP_PASSWORD)
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)


class _LoopbackController(Controller):
    """aiosmtpd's controller on port 0: it learns the port the kernel chose before the
    readiness probe connects to it."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def smtp_receiver() -> Iterator[SMTPReceiver]:
    """An SMTP server on 127.0.0.1 that records mail and takes AUTH LOGIN/PLAIN in clear
    (loopback only), without STARTTLS."""
    receiver = SMTPReceiver()
    controller = _LoopbackController(
        receiver,
        hostname="127.0.0.1",
        port=0,
        server_hostname="localhost",
        authenticator=receiver.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    receiver.port = controller.port
    yield receiver
    controller.stop()
