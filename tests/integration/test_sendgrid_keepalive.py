"""The SendGrid provider's kept-alive transport (channels.sendgrid.KeptAlive), through the real SDK
against a local HTTP/1.1 server that counts the connections it accepts: one connection per sending
thread, the SDK's own answers and errors, and never a POST sent twice."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from channels.base import TOUCH_ARG, OutgoingMessage, ProviderError
from channels.sendgrid import SendGridProvider, proxied


class MailSend(ThreadingHTTPServer):
    """Answers POST /v3/mail/send with `status`; counts connections and requests."""

    daemon_threads = True

    def __init__(self) -> None:
        self.connections = 0
        self.posts: list[dict[str, Any]] = []
        self.status = 202
        self.close_after = False  # answer with `Connection: close`
        self.drop = False  # read the request, then hang up without an answer
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self) -> Any:
        with self.lock:
            self.connections += 1
        return super().get_request()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: MailSend

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.posts.append(body)
        if self.server.drop:
            self.close_connection = True
            return
        status = self.server.status
        answer = b"" if status == 202 else json.dumps({"errors": [{"message": "bad from", "field": "from"}]}).encode()
        self.send_response(status)
        self.send_header("X-Message-Id", f"msg-{len(self.server.posts)}")
        self.send_header("Content-Length", str(len(answer)))
        if status == 429:
            self.send_header("Retry-After", "3")
        if self.server.close_after:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer)


@pytest.fixture
def server() -> Iterator[MailSend]:
    srv = MailSend()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def message(i: int) -> OutgoingMessage:
    return OutgoingMessage(touch_id=i, channel="email", to_email=f"buyer{i}@example.com",
                           from_email="hello@example.com", subject="Hi", text="Hello")


def provider(server: MailSend) -> SendGridProvider:
    return SendGridProvider("SG.test", f"http://127.0.0.1:{server.server_address[1]}", timeout=5)


def test_one_connection_carries_every_send_of_a_thread(server: MailSend) -> None:
    sg = provider(server)
    ids = [sg.send(message(i)).provider_message_id for i in range(6)]
    assert ids == [f"msg-{i}" for i in range(1, 7)]
    assert server.connections == 1  # the SDK's own urllib transport opens six
    assert [p["custom_args"][TOUCH_ARG] for p in server.posts] == [str(i) for i in range(6)]


def test_each_thread_keeps_its_own_connection(server: MailSend) -> None:
    sg = provider(server)
    barrier = threading.Barrier(4)

    def send(i: int) -> str:
        if i < 4:
            barrier.wait()  # the four threads all start: four connections, whatever the scheduling
        return sg.send(message(i)).provider_message_id

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(send, range(40)))
    assert len(set(got)) == 40 and len(server.posts) == 40
    assert server.connections == 4


def test_errors_keep_their_meaning(server: MailSend) -> None:
    sg = provider(server)
    server.status = 400
    with pytest.raises(ProviderError) as bad:
        sg.send(message(1))
    assert not bad.value.retryable and bad.value.status == 400 and "bad from (field from)" in bad.value.reason
    server.status = 429
    with pytest.raises(ProviderError) as slow:
        sg.send(message(2))
    assert slow.value.retryable and "retry after 3s" in slow.value.reason and not slow.value.maybe_sent
    server.status = 202
    assert sg.send(message(3)).provider_message_id == "msg-3"
    assert server.connections == 1  # an error answer leaves the connection usable


def test_a_closed_connection_is_replaced(server: MailSend) -> None:
    sg = provider(server)
    server.close_after = True
    for i in range(3):
        sg.send(message(i))
    assert server.connections == 3 and len(server.posts) == 3


def test_a_hang_up_after_the_request_is_uncertain_and_not_sent_again(server: MailSend) -> None:
    sg = provider(server)
    sg.send(message(1))
    server.drop = True
    with pytest.raises(ProviderError) as lost:
        sg.send(message(2))
    assert lost.value.maybe_sent  # the provider may have it: a person checks, the engine never resends
    assert [p["custom_args"][TOUCH_ARG] for p in server.posts] == ["1", "2"]  # posted once, not retried
    server.drop = False
    assert sg.send(message(3)).provider_message_id == "msg-3"  # a fresh connection after the lost one
    assert server.connections == 2


def test_a_refused_connection_is_safe_to_retry() -> None:
    srv = MailSend()
    port = srv.server_address[1]
    srv.server_close()  # nothing listens there now
    sg = SendGridProvider("SG.test", f"http://127.0.0.1:{port}", timeout=5)
    with pytest.raises(ProviderError) as refused:
        sg.send(message(1))
    assert refused.value.retryable and not refused.value.maybe_sent


def test_behind_a_proxy_the_sdk_transport_stays(server: MailSend, monkeypatch: pytest.MonkeyPatch) -> None:
    """http.client ignores HTTP(S)_PROXY; urllib (the SDK's transport) honours it: with a proxy set for
    the provider's host, every send keeps going through urllib and so through the proxy."""
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{server.server_address[1]}")  # the proxy: our server
    sg = SendGridProvider("SG.test", "http://mail-send.invalid", timeout=5)
    assert sg.send(message(1)).provider_message_id == "msg-1"  # reached only through the proxy
    assert server.connections == 1
    monkeypatch.setenv("no_proxy", "mail-send.invalid")
    assert not proxied("http://mail-send.invalid")
