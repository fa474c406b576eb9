"""`rmx-lm server` end to end through a real HTTP client: chat and text completions with and
without SSE streaming, the model list and health, bad requests (400 with an OpenAI-style
error body), concurrent clients, and a client that disconnects mid-stream."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import threading
import time

import pytest

import fixtures
from test_lm import BIN, rmx_lm  # noqa: F401  (rmx_lm checks the binary exists)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    rmx_lm("--help")
    port = _free_port()
    proc = subprocess.Popen([BIN, "server", "--model", fixtures.smollm2_gguf(), "--port", str(port),
                             "--max-tokens-limit", "64"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("server did not start: " + proc.stderr.read().decode(errors="replace"))
    yield port
    proc.kill()
    proc.wait()


def _post(port, path, body, raw: bytes | None = None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    data = raw if raw is not None else json.dumps(body).encode()
    c.request("POST", path, body=data, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, r.read().decode()


CHAT = {"messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 20, "temperature": 0}


def test_chat_completion(server):
    status, body = _post(server, "/v1/chat/completions", CHAT)
    assert status == 200, body
    r = json.loads(body)
    assert r["object"] == "chat.completion"
    msg = r["choices"][0]["message"]
    assert msg["role"] == "assistant" and "Paris" in msg["content"]
    assert r["choices"][0]["finish_reason"] in ("stop", "length")
    u = r["usage"]
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] > 0


def test_chat_completion_streams_the_same_text(server):
    _, body = _post(server, "/v1/chat/completions", CHAT)
    want = json.loads(body)["choices"][0]["message"]["content"]
    status, body = _post(server, "/v1/chat/completions", {**CHAT, "stream": True})
    assert status == 200
    events = [ln[len("data: "):] for ln in body.splitlines() if ln.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == want
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_text_completion_and_stop_strings(server):
    status, body = _post(server, "/v1/completions",
                         {"prompt": "One, two, three, four,", "max_tokens": 30, "temperature": 0,
                          "stop": ["seven"]})
    assert status == 200, body
    r = json.loads(body)
    assert r["object"] == "text_completion"
    assert "seven" not in r["choices"][0]["text"]


def test_models_and_health(server):
    c = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    c.request("GET", "/v1/models")
    r = json.loads(c.getresponse().read())
    assert r["object"] == "list" and r["data"][0]["id"].endswith(".gguf")
    c.request("GET", "/health")
    assert json.loads(c.getresponse().read())["status"] == "ok"


@pytest.mark.parametrize("body,raw,param", [
    (None, b"{not json", None),
    ({"messages": []}, None, "messages"),
    ({**CHAT, "max_tokens": 100000}, None, "max_tokens"),
    ({**CHAT, "temperature": -2}, None, None),
    ({**CHAT, "top_p": 5}, None, None),
    ({"messages": "hello"}, None, None),
])
def test_bad_requests_get_400_with_an_openai_error(server, body, raw, param):
    status, text = _post(server, "/v1/chat/completions", body, raw)
    assert status == 400, text
    err = json.loads(text)["error"]
    assert err["type"] == "invalid_request_error" and err["message"]
    if param:
        assert err["param"] == param


def test_oversized_request_is_rejected(server):
    status, _ = _post(server, "/v1/completions", None, raw=b'{"prompt": "' + b"a" * (2 << 20) + b'"}')
    assert status == 413


def test_concurrent_clients_get_their_own_answers(server):
    prompts = ["What is the capital of France?", "Name a color of the sky.", "What is 2+2?"]
    solo = {}
    for p in prompts:
        _, body = _post(server, "/v1/chat/completions",
                        {"messages": [{"role": "user", "content": p}], "max_tokens": 12, "temperature": 0})
        solo[p] = json.loads(body)["choices"][0]["message"]["content"]
    results = {}

    def ask(p):
        _, body = _post(server, "/v1/chat/completions",
                        {"messages": [{"role": "user", "content": p}], "max_tokens": 12, "temperature": 0})
        results[p] = json.loads(body)["choices"][0]["message"]["content"]

    threads = [threading.Thread(target=ask, args=(p,)) for p in prompts * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == solo


def test_server_survives_a_client_that_disconnects_mid_stream(server):
    s = socket.create_connection(("127.0.0.1", server), timeout=30)
    body = json.dumps({**CHAT, "stream": True, "max_tokens": 64}).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    s.recv(64)  # the stream has started
    s.close()
    status, body = _post(server, "/v1/chat/completions", CHAT)
    assert status == 200 and "Paris" in body
