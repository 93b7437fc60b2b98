"""Optional stronger models: fetched once into the cache dir, checksum-verified, used when chosen.

Nothing leaves the machine: the "download" is the shipped u2netp file served by a loopback HTTP
server, registered under a test name.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

import itertools

import numpy as np
from PIL import Image, ImageDraw

from tools.providers.local import LocalAIUnavailable, model, models


class _Server:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.hits = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/test-model.onnx"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    data = model.locate_model().read_bytes()
    server = _Server(data)
    spec = replace(
        models.MODELS["u2netp"],
        name="test-model",
        filename="test-model.onnx",
        url=server.url,
        about="u2netp served from loopback",
    )
    monkeypatch.setitem(models.MODELS, "test-model", spec)
    monkeypatch.setenv(models.ENV_MODEL_DIR, str(tmp_path / "cache"))
    monkeypatch.delenv(models.ENV_MODEL_URL, raising=False)
    monkeypatch.delenv(models.ENV_MODEL, raising=False)
    model.reset_session()
    yield server
    server.close()
    model.reset_session()


def test_fetch_once_verify_and_report_progress(served: _Server, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    path = models.fetch_model("test-model", progress=lambda done, total: seen.append((done, total)))
    assert path == tmp_path / "cache" / "test-model.onnx"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == model.MODEL_SHA256
    assert seen and seen[-1] == (model.MODEL_SIZE, model.MODEL_SIZE)
    assert all(a <= b for (a, _), (b, _) in itertools.pairwise(seen))
    assert models.fetch_model("test-model") == path and served.hits == 1  # cached, not fetched again
    assert not list(path.parent.glob("*.part"))
    rows = {r["name"]: r for r in models.status()}
    assert rows["test-model"]["present"] and rows["u2netp"]["present"]
    assert models.remove_model("test-model") and not path.exists()


def test_a_tampered_download_is_refused_and_leaves_nothing(served: _Server, tmp_path: Path) -> None:
    body = bytearray(served.body)
    body[1000] ^= 0xFF
    served.body = bytes(body)
    with pytest.raises(LocalAIUnavailable, match="verification"):
        models.fetch_model("test-model")
    served.body = served.body[:-10]
    with pytest.raises(LocalAIUnavailable, match="bytes"):
        models.fetch_model("test-model")
    assert not any((tmp_path / "cache").iterdir())


def test_only_https_or_loopback_sources() -> None:
    with pytest.raises(LocalAIUnavailable, match="https only"):
        models.fetch_model("isnet-general-use", url="http://example.invalid/model.onnx")
    with pytest.raises(LocalAIUnavailable, match="unknown"):
        models.fetch_model("nope")
    with pytest.raises(LocalAIUnavailable, match="ships"):
        models.fetch_model("u2netp")


def _scene() -> Image.Image:
    img = Image.new("RGB", (256, 192), (225, 222, 215))
    ImageDraw.Draw(img).ellipse((80, 40, 180, 170), fill=(190, 40, 40))
    return img


def test_the_chosen_model_is_fetched_on_first_use_and_used(served: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = model.predict_alpha(_scene())  # shipped u2netp
    assert model.active_model().name == "u2netp"
    monkeypatch.setenv(models.ENV_MODEL, "test-model")
    model.reset_session()
    got = model.predict_alpha(_scene())
    assert model.active_model().name == "test-model" and served.hits == 1
    assert np.abs(got - expected).max() < 1e-4


def test_an_unreachable_model_falls_back_to_the_shipped_one(
    served: _Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    served.close()
    monkeypatch.setenv(models.ENV_MODEL, "test-model")
    model.reset_session()
    with caplog.at_level("WARNING"):
        alpha = model.predict_alpha(_scene())
    assert model.active_model().name == "u2netp" and alpha.shape == (320, 320)
    assert any("using the shipped u2netp" in r.getMessage() for r in caplog.records)
    monkeypatch.setenv(models.ENV_MODEL, "no-such-model")
    model.reset_session()
    assert model.active_model().name == "u2netp"


def test_models_cli_lists(served: _Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert models.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "isnet-general-use" in out and "birefnet-general-lite" in out and "Apache-2.0" in out
