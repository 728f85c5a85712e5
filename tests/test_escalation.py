"""VLM escalation against a loopback server that speaks the OpenAI chat-completions wire protocol
(a test double for a remote model server, which cannot run here): it checks each request and
answers valid JSON, slowly, malformed, 429 or 500."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from monitor.escalation.client import VlmClient, VlmError
from monitor.escalation.worker import EscalationRequest, EscalationResult, EscalationWorker
from tests.conftest import wait_for

GOOD = {
    "summary": "The picture is black.",
    "faults": [{"type": "black", "confidence": 0.97}],
    "likely_cause": "Camera power or lens cap.",
    "suggested_actions": ["Check the camera's power", "Check the lens"],
    "severity": "critical",
    "ratings": {
        aspect: {"score": 1 if aspect == "exposure" else 5, "reason": "black frame" if aspect == "exposure" else "-"}
        for aspect in ("sharpness", "noise", "exposure", "colour", "artifacts", "composition")
    },
}


class FakeVlm:
    def __init__(self, model: str = "test-vlm") -> None:
        self.model = model
        self.mode = "ok"
        self.delay_s = 0.0
        self.requests: list[dict] = []
        self.problems: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                outer._check(self.path, body)
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                if outer.mode == "short_body":  # Content-Length promises more than is sent
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "5000")
                    self.end_headers()
                    self.wfile.write(b'{"choices": [')
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if outer.mode == "bad_status":
                    self.wfile.write(b"HTTQ/9.9 abc\r\n\r\n")
                    self.close_connection = True
                    return
                if outer.mode in ("deep_body", "deep_content"):  # JSON nested past the parser's recursion limit
                    deep = "[" * 100_000 + "]" * 100_000
                    if outer.mode == "deep_body":
                        data = deep.encode()
                    else:
                        message = {"role": "assistant", "content": deep}
                        data = json.dumps({"choices": [{"index": 0, "message": message}]}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if outer.mode in ("429", "500"):
                    self.send_response(int(outer.mode))
                    if outer.mode == "429":
                        self.send_header("Retry-After", "1")
                    self.end_headers()
                    return
                bad = outer.mode == "malformed" or (outer.mode == "malformed_once" and len(outer.requests) % 2 == 1)
                content = "Sure! The frame looks black." if bad else json.dumps(GOOD)
                reply = {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": body.get("model"),
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                    ],
                }
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _check(self, path: str, body: dict) -> None:
        if path != "/v1/chat/completions":
            self.problems.append(f"path {path}")
        if body.get("model") != self.model:
            self.problems.append(f"model {body.get('model')}")
        images = [
            part["image_url"]["url"]
            for m in body["messages"]
            if isinstance(m.get("content"), list)
            for part in m["content"]
            if part.get("type") == "image_url"
        ]
        if len(images) != 1 or not images[0].startswith("data:image/jpeg;base64,"):
            self.problems.append("no JPEG data-URI image")
            return
        img = cv2.imdecode(np.frombuffer(base64.b64decode(images[0].split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
        if img is None or min(img.shape[:2]) < 16:
            self.problems.append("image not decodable")

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def vlm():
    server = FakeVlm()
    yield server
    server.close()


IMG = np.full((360, 640, 3), 3, np.uint8)


def test_diagnosis_round_trip(vlm):
    client = VlmClient(vlm.url, "test-vlm", timeout_s=5)
    d = client.diagnose(IMG, {"stream": "cam", "fault": "black"})
    assert d == GOOD and vlm.problems == []
    fmt = vlm.requests[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"]["required"][0] == "summary"
    text = vlm.requests[0]["messages"][1]["content"][0]["text"]
    assert '"fault": "black"' in text  # the context travels with the image


def test_malformed_answer_gets_one_repair(vlm):
    vlm.mode = "malformed_once"
    assert VlmClient(vlm.url, "test-vlm", timeout_s=5).diagnose(IMG, {}) == GOOD
    assert len(vlm.requests) == 2 and vlm.requests[1]["messages"][-1]["role"] == "user"
    vlm.mode = "malformed"
    with pytest.raises(VlmError, match="after one repair"):
        VlmClient(vlm.url, "test-vlm", timeout_s=5).diagnose(IMG, {})


def test_per_aspect_ratings_are_checked_but_not_required():
    """The seed's per-aspect ratings (1-10 and a reason) are asked for in the schema; a wrong one
    is repaired like any invalid answer, a missing one leaves the rest of the diagnosis usable."""
    from monitor.escalation.client import DIAGNOSIS_SCHEMA, validate

    assert DIAGNOSIS_SCHEMA["properties"]["ratings"]["required"] == list(GOOD["ratings"])
    assert validate(GOOD) == GOOD
    without = {k: v for k, v in GOOD.items() if k != "ratings"}
    assert validate(without) == without
    for bad in (11, 0, 2.5, "7", True):
        wrong = json.loads(json.dumps(GOOD))
        wrong["ratings"]["noise"]["score"] = bad
        with pytest.raises(ValueError, match=r"ratings\.noise\.score"):
            validate(wrong)
    partial = json.loads(json.dumps(GOOD))
    del partial["ratings"]["colour"]
    with pytest.raises(ValueError, match="rate each of"):
        validate(partial)


@pytest.mark.parametrize(("mode", "match"), [("429", "HTTP 429"), ("500", "HTTP 500")])
def test_http_errors(vlm, mode, match):
    vlm.mode = mode
    with pytest.raises(VlmError, match=match):
        VlmClient(vlm.url, "test-vlm", timeout_s=5).diagnose(IMG, {})


def test_timeout_and_unreachable(vlm):
    vlm.delay_s = 2.0
    with pytest.raises(VlmError, match="unreachable or too slow"):
        VlmClient(vlm.url, "test-vlm", timeout_s=0.5).diagnose(IMG, {})
    with pytest.raises(VlmError, match="unreachable"):
        VlmClient("http://127.0.0.1:9/v1", "test-vlm", timeout_s=1).diagnose(IMG, {})


@pytest.mark.parametrize(
    ("mode", "match"),
    [
        ("short_body", "broken HTTP reply \\(IncompleteRead\\)"),
        ("bad_status", "broken HTTP reply \\(BadStatusLine\\)"),
        ("deep_body", "nested too deeply"),
        ("deep_content", "not a valid diagnosis after one repair: JSON nested too deeply"),
    ],
)
def test_broken_replies_are_the_calls_own_error(vlm, mode, match):
    vlm.mode = mode
    with pytest.raises(VlmError, match=match):
        VlmClient(vlm.url, "test-vlm", timeout_s=5).diagnose(IMG, {})


def test_no_reply_ends_the_escalation_worker(vlm):
    """Every broken reply becomes that alert's diagnosis_error, and the next alert still gets a
    diagnosis: the worker thread lives on. Whatever the client did not foresee counts too."""
    results: list[EscalationResult] = []
    w = EscalationWorker(VlmClient(vlm.url, "test-vlm", timeout_s=5), results.append, queue_size=8,
                         min_interval_s=0, max_calls_per_minute=100)  # fmt: skip
    w.start()
    for i, mode in enumerate(["short_body", "bad_status", "deep_body", "deep_content", "ok"]):
        vlm.mode = mode
        assert w.submit(req(f"a{i}"))
        assert wait_for(lambda n=i: len(results) == n + 1, 15), (mode, results)
    assert [r.error is not None for r in results] == [True, True, True, True, False]
    assert results[-1].diagnosis == GOOD and all(t.is_alive() for t in w._threads)
    assert (w.counters.failed, w.counters.diagnosed, w.counters.unexpected) == (4, 1, 0)

    class Exploding(VlmClient):
        def diagnose(self, image, context, question=None):
            raise KeyError("a bug in the client")

    w.client = Exploding(vlm.url, "test-vlm")
    assert w.submit(req("boom"))
    assert wait_for(lambda: len(results) == 6, 10)
    assert "unexpectedly (KeyError" in results[-1].error and w.counters.unexpected == 1
    assert all(t.is_alive() for t in w._threads)
    w.stop()


def req(alert_id: str, stream: str = "cam", fault: str = "black") -> EscalationRequest:
    return EscalationRequest(alert_id, stream, fault, 1.0, IMG, {"severity": "critical"})


def test_worker_rate_limits_duplicates_and_queue_bound(vlm):
    results: list[EscalationResult] = []
    w = EscalationWorker(VlmClient(vlm.url, "test-vlm", timeout_s=5), results.append, queue_size=1,
                         min_interval_s=300, max_calls_per_minute=3)  # fmt: skip
    assert w.submit(req("a1"))
    assert not w.submit(req("a1"))  # the same alert is not sent twice
    assert not w.submit(req("a2"))  # the same (stream, fault) within min_interval_s
    assert not w.submit(req("b1", stream="cam2"))  # queue of 1 is full (worker not started)
    assert (w.counters.skipped_duplicate, w.counters.skipped_rate_limit, w.counters.skipped_queue_full) == (1, 1, 1)
    w.start()
    assert wait_for(lambda: w.counters.diagnosed == 1, 10)
    assert [r.request.alert_id for r in results] == ["a1"] and results[0].diagnosis is not None
    w.stop()
    capped = EscalationWorker(
        VlmClient(vlm.url, "test-vlm", timeout_s=5), results.append, queue_size=10, max_calls_per_minute=3
    )
    assert all(capped.submit(req(f"x{i}", stream=f"cam{i}")) for i in range(3))
    assert not capped.submit(req("x3", stream="cam3"))  # global cap: 3 calls a minute
    assert capped.counters.skipped_rate_limit == 1


def test_the_worker_remembers_a_bounded_number_of_escalated_alerts():
    from monitor.escalation.worker import SENT_IDS_KEPT

    n = SENT_IDS_KEPT + 50
    w = EscalationWorker(VlmClient("http://127.0.0.1:9/v1", "test-vlm", timeout_s=1), lambda r: None,
                         queue_size=n, min_interval_s=0, max_calls_per_minute=n)  # fmt: skip
    assert all(w.submit(req(f"a{i}", stream=f"cam{i}")) for i in range(n))
    assert len(w._sent_ids) == SENT_IDS_KEPT  # a daemon that runs for months does not grow without end
    assert not w.submit(req(f"a{n - 1}", stream=f"cam{n - 1}"))  # a recent alert is still not sent twice
    assert w.counters.skipped_duplicate == 1


def test_pipeline_publishes_diagnosis_as_update_and_never_waits_for_it(vlm, clips):
    from monitor.config import EscalationConfig
    from monitor.runtime import StreamSpec
    from tests.conftest import LiveRun, stream_settings

    vlm.delay_s = 3.0  # a slow model
    settings = stream_settings(capture={"loop": False, "realtime": True})
    esc = EscalationConfig(enabled=True, base_url=vlm.url, model="test-vlm", timeout_s=10)
    with LiveRun([StreamSpec("cam", str(clips["black"]), settings)], escalation=esc) as run:
        assert wait_for(lambda: run.events("black", "raise"), 30)
        raised = run.events("black", "raise")[0]
        assert run.events("black", "update") == []  # the raise did not wait for the slow VLM
        assert 3.0 <= raised.stream_time <= 4.5  # same detection latency as without escalation
        assert wait_for(lambda: any(e.diagnosis for e in run.events("black", "update")), 30)
        upd = next(e for e in run.events("black", "update") if e.diagnosis)
        assert upd.id == raised.id and upd.diagnosis == GOOD and "diagnosis" in upd.to_dict()
    assert vlm.problems == []


def test_failed_escalation_is_an_update_with_diagnosis_error(vlm, clips):
    from monitor.config import EscalationConfig
    from monitor.runtime import StreamSpec
    from tests.conftest import LiveRun, stream_settings

    vlm.mode = "500"
    settings = stream_settings(capture={"loop": False, "realtime": True})
    esc = EscalationConfig(enabled=True, base_url=vlm.url, model="test-vlm", timeout_s=5)
    with LiveRun([StreamSpec("cam", str(clips["black"]), settings)], escalation=esc) as run:
        assert wait_for(lambda: any(e.diagnosis_error for e in run.events("black", "update")), 30)
        upd = next(e for e in run.events("black", "update") if e.diagnosis_error)
        assert "HTTP 500" in upd.diagnosis_error and upd.to_dict()["diagnosis_error"] == upd.diagnosis_error


def test_ask_cli_about_a_snapshot(vlm, tmp_path):
    import subprocess

    import yaml

    from tests.conftest import ROOT, VQMON

    snaps = tmp_path / "state" / "snapshots" / "cam"
    snaps.mkdir(parents=True)
    cv2.imwrite(str(snaps / "20261125T120000-black-3ac81cda.jpg"), IMG)
    cfg = tmp_path / "c.yaml"
    esc = {"base_url": vlm.url, "model": "test-vlm", "timeout_s": 5}
    cfg.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"), "escalation": esc}))
    r = subprocess.run([*VQMON, "ask", "3ac81cda-4452-4a48", "Is the lens covered?", "--config", str(cfg)],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["summary"] == GOOD["summary"]  # the fake answers every question the same
    assert "Is the lens covered?" in vlm.requests[-1]["messages"][1]["content"][0]["text"] and vlm.problems == []
    # with the alert's details beside the snapshot, they go with the picture; a follow-up sees the
    # earlier question and answer; --new starts again
    (snaps / "20261125T120000-black-3ac81cda.json").write_text(
        json.dumps({"fault": "black", "measurements": {"dark_fraction": 0.999}})
    )
    ask = [*VQMON, "ask", "3ac81cda", "--config", str(cfg)]
    r = subprocess.run([*ask, "Why?"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    msgs = vlm.requests[-1]["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert "Is the lens covered?" in msgs[1]["content"][0]["text"] and "dark_fraction" in msgs[1]["content"][0]["text"]
    assert json.loads(msgs[2]["content"])["summary"] == GOOD["summary"]  # the first answer
    assert msgs[3]["content"] == "Why?"
    r = subprocess.run([*ask, "Fresh?", "--new"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0 and [m["role"] for m in vlm.requests[-1]["messages"]] == ["system", "user"]
    r = subprocess.run([*VQMON, "ask", "deadbeef", "?", "--config", str(cfg)], capture_output=True, text=True,
                       cwd=ROOT, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "neither an image file nor the id" in r.stderr


def test_prompt_file_and_shipped_default(vlm, tmp_path, clips):
    from monitor.config import EscalationConfig
    from monitor.escalation.client import SYSTEM_PROMPT
    from monitor.runtime import Pipeline, StreamSpec
    from monitor.sinks import Fanout
    from tests.conftest import ROOT, stream_settings

    assert (ROOT / "configs" / "prompts" / "diagnosis.txt").read_text().strip() == SYSTEM_PROMPT
    prompt = tmp_path / "p.txt"
    prompt.write_text("You judge CCTV pictures for a parking garage.")
    esc = EscalationConfig(enabled=True, base_url=vlm.url, model="test-vlm", prompt_file=str(prompt), max_concurrency=2)
    p = Pipeline([StreamSpec("cam", str(clips["black"]), stream_settings())], Fanout([]), escalation=esc)
    assert p.escalation is not None and p.escalation.client.system_prompt == prompt.read_text()
    assert p.escalation.concurrency == 2


@pytest.mark.parametrize(("delay_s", "drain_s", "diagnosed"), [(0.5, 5.0, True), (5.0, 0.5, False)])
def test_diagnoses_in_flight_at_shutdown_are_waited_for_or_recorded(vlm, delay_s, drain_s, diagnosed):
    """Stopping the daemon gives a diagnosis in flight a moment to come back; one that does not is
    published as not diagnosed, never dropped without a word."""
    from monitor.analyze import CollectSink
    from monitor.config import EscalationConfig
    from monitor.frames import Frame
    from monitor.runtime import Pipeline, StreamSpec
    from monitor.sinks import Fanout
    from tests.conftest import stream_settings

    vlm.delay_s = delay_s
    esc = EscalationConfig(enabled=True, base_url=vlm.url, model="test-vlm", timeout_s=10)
    sink = CollectSink()
    settings = stream_settings(checks={"black": {"raise_after_s": 0.0}})
    pipeline = Pipeline([StreamSpec("cam", "cam.mp4", settings)], Fanout([sink]), escalation=esc)
    pipeline.escalation.start()
    pipeline.mux.put("cam", Frame.from_image(np.zeros((180, 320, 3), np.uint8), stream="cam"))
    pipeline.shutdown(drain_s=drain_s)
    raised = [e for e in sink.events if e.event == "raise"]
    updates = [e for e in sink.events if e.event == "update"]
    assert len(raised) == 1 and len(updates) == 1 and updates[0].id == raised[0].id
    if diagnosed:
        assert updates[0].diagnosis == GOOD
    else:
        assert updates[0].diagnosis_error == "not diagnosed: vqmon stopped before the VLM answered"
