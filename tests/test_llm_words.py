"""Reference words: the shipped word files, and ``llm=openai`` talking through the real ``openai`` client to a small
OpenAI-compatible server on 127.0.0.1 (429, 500, timeouts, malformed replies, missing key, offline reruns)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mcbench.data.base import Aspect, MultiViewDataset
from mcbench.data.papers import PAPER_DATASETS
from mcbench.llm import OpenAIWords
from mcbench.llm_replies import object_of, parse_word_list, plural
from mcbench.paths import datasets_dir
from mcbench.words import WORD_SOURCES, read_words_file


class FakeOpenAI:
    """A chat-completions server on 127.0.0.1:<random port>. ``script`` holds one action per request (then
    ``default``): ``{"content": str}``, ``{"status": int}``, ``{"sleep": s, "content": str}`` or ``{"raw": bytes}``."""

    def __init__(self, default: dict | None = None) -> None:
        self.script: list[dict] = []
        self.default = default or {"content": "Red, yellow, green, and purple."}
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("authorization")})
                action = server.script.pop(0) if server.script else server.default
                try:
                    self._answer(action, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout)

            def _answer(self, action, body):
                time.sleep(action.get("sleep", 0))
                status = action.get("status", 200)
                headers = dict(action.get("headers", {}))
                if "raw" in action:
                    payload, ctype = action["raw"], action.get("ctype", "text/html")
                elif status != 200:
                    payload = json.dumps({"error": {"message": f"fake {status}", "type": "x", "code": None}}).encode()
                    ctype = "application/json"
                else:
                    content = action["content"]
                    payload = json.dumps({
                        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body.get("model"),
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": content}}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                    }).encode()
                    ctype = "application/json"
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(payload)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    srv = FakeOpenAI()
    yield srv
    srv.stop()


def fruit_dataset(name: str = "toy_fruit", words: tuple[str, ...] = ()) -> MultiViewDataset:
    aspects = {
        "color": Aspect("color", ("red", "green"), "Fruit with a color of *", words),
        "species": Aspect("species", ("apples", "bananas"), "Fruit with a species of *"),
    }
    labels = {a: np.array([0, 1]) for a in aspects}
    return MultiViewDataset(name, aspects, labels, ["a", "b"], pixels=np.zeros((2, 4, 4, 3), np.uint8),
                            info={"object": "fruit"})


def source(server: FakeOpenAI, tmp_path: Path, **kw) -> OpenAIWords:
    params = dict(model="fake-gpt", base_url=server.url, timeout=2.0, max_retries=3, retry_delay=0.01,
                  retry_max_delay=0.05, cache_dir=tmp_path / "llm")
    params.update(kw)
    return WORD_SOURCES.get("openai")(**params)


# ------------------------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    "reply, words",
    [
        ("red, yellow, green, orange, purple, blue", ["red", "yellow", "green", "orange", "purple", "blue"]),
        ("Red, Yellow and Green.", ["red", "yellow", "green"]),
        ("hearts, diamonds, clubs, and spades", ["hearts", "diamonds", "clubs", "spades"]),
        ("1. Apples\n2. Bananas\n3) Grapes\n4. Apples", ["apples", "bananas", "grapes"]),
        ("- **Roses**\n- Tulips (spring)\n* Daisies\n• Lilies", ["roses", "tulips", "daisies", "lilies"]),
        ("Here are some common colors of fruit:\n\nred, green, yellow\n\nLet me know if you need more!",
         ["red", "green", "yellow"]),
        ("Sure! The common suits are: hearts, spades, clubs, diamonds.", ["hearts", "spades", "clubs", "diamonds"]),
        ('"black", "white", "silver"', ["black", "white", "silver"]),
        ('["BMW", "Volvo", "Hyundai"]', ["bmw", "volvo", "hyundai"]),
        ("```\nland, air, water\n```", ["land", "air", "water"]),
        ("apples; pears; plums; etc.", ["apples", "pears", "plums"]),
        ("1. Happiness - a positive feeling\n2. Sadness: feeling down\n3. Neutral expression",
         ["happiness", "sadness", "neutral expression"]),
        ("red\ngreen\nRED\nGreen ", ["red", "green"]),
        ("1, 2, 3, 10", ["1", "2", "3", "10"]),
        ("", []),
        ("   \n ", []),
        ("I am unable to comply with that request right now.", []),
    ],
)
def test_parse_word_list(reply, words):
    assert parse_word_list(reply) == words


def test_plural_and_object():
    assert [plural(w) for w in ("color", "species", "suits", "glass", "identity", "number", "day")] == [
        "colors", "species", "suits", "glasses", "identities", "numbers", "days"]
    ds = fruit_dataset()
    assert object_of(ds, ds.aspects["color"]) == "fruit"
    ds.info.pop("object")
    assert object_of(ds, Aspect("number", ("a",), "Card with number of *")) == "cards"
    assert object_of(ds, Aspect("color", ("a",), "A photo with a color of *")) == "photos"


# ----------------------------------------------------------------------------------------------- llm=openai


def test_asks_parses_and_caches_with_provenance(server, tmp_path):
    ds = fruit_dataset()
    words = source(server, tmp_path)(ds, ds.aspects["color"])
    assert words.words == ("red", "yellow", "green", "purple") and words.source == "openai:fake-gpt"
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer test-key"
    assert req["body"]["model"] == "fake-gpt" and req["body"]["temperature"] == 0.0
    question = req["body"]["messages"][-1]["content"]
    assert question.startswith("What are the common colors of fruit? Answer with a comma-separated list")
    (cache,) = (tmp_path / "llm").glob("*.json")
    record = json.loads(cache.read_text())
    for key in ("words", "prompt", "model", "date", "raw_reply", "note"):
        assert record[key], key
    assert record["prompt"] == question and record["raw_reply"] == "Red, yellow, green, and purple."
    assert record["dataset"] == "toy_fruit" and record["aspect"] == "color" and record["usage"]["total_tokens"] == 15
    assert read_words_file(cache).words == words.words  # a cache file is a valid shipped words file
    assert not list((tmp_path / "llm").glob(".*.tmp"))  # written atomically


def test_a_cached_reply_is_used_without_network_or_key(server, tmp_path, monkeypatch):
    ds = fruit_dataset()
    first = source(server, tmp_path)(ds, ds.aspects["species"])
    server.stop()
    monkeypatch.delenv("OPENAI_API_KEY")
    again = source(server, tmp_path, max_retries=0)(ds, ds.aspects["species"])
    assert again.words == first.words and again.provenance["from_cache"] is True
    offline = source(server, tmp_path, offline=True)(ds, ds.aspects["species"])
    assert offline.words == first.words
    with pytest.raises(FileNotFoundError, match="llm.offline=true: no cached reply for toy_fruit/color"):
        source(server, tmp_path, offline=True)(ds, ds.aspects["color"])
    # another model, question or endpoint is another cache entry: with the server down that is a clear failure
    with pytest.raises(RuntimeError, match="llm.api_key_env|OPENAI_API_KEY"):
        source(server, tmp_path, model="other")(ds, ds.aspects["species"])


def test_retries_429_and_500_with_backoff(server, tmp_path):
    server.script = [{"status": 429, "headers": {"retry-after": "0.02"}}, {"status": 500}, {"status": 503}]
    ds = fruit_dataset()
    start = time.perf_counter()
    words = source(server, tmp_path, max_retries=3)(ds, ds.aspects["color"])
    assert len(server.requests) == 4 and words.words[0] == "red"
    assert time.perf_counter() - start < 5


def test_retries_after_a_timeout(server, tmp_path):
    server.script = [{"sleep": 1.5, "content": "late, reply"}]
    ds = fruit_dataset()
    words = source(server, tmp_path, timeout=0.3)(ds, ds.aspects["color"])
    assert words.words == ("red", "yellow", "green", "purple") and len(server.requests) == 2


def test_gives_up_after_bounded_retries_and_caches_nothing(server, tmp_path):
    server.default = {"status": 500}
    ds = fruit_dataset()
    with pytest.raises(RuntimeError, match="no reply from .* after 3 attempt\\(s\\); last: HTTP 500. .*llm.max_retries"):
        source(server, tmp_path, max_retries=2)(ds, ds.aspects["color"])
    assert len(server.requests) == 3 and not list((tmp_path / "llm").glob("*.json"))
    server.default = {"sleep": 1.0, "content": "x, y"}
    with pytest.raises(RuntimeError, match="last: no answer within llm.timeout=0.2s"):
        source(server, tmp_path, max_retries=1, timeout=0.2)(ds, ds.aspects["color"])


@pytest.mark.parametrize(
    "action, match",
    [
        ({"content": ""}, "holds no list of words"),
        ({"content": "I am unable to comply with that request right now."}, "holds no list of words"),
        ({"raw": b"<html>not an API</html>"}, "not a chat completion"),
        ({"raw": b"{broken json", "ctype": "application/json"}, "not a chat completion"),
        ({"raw": b'{"id": "x", "object": "chat.completion"}', "ctype": "application/json"}, "holds no list of words"),
    ],
)
def test_malformed_replies_are_one_clear_error(server, tmp_path, action, match):
    server.default = action
    ds = fruit_dataset()
    with pytest.raises(ValueError, match=match):
        source(server, tmp_path)(ds, ds.aspects["color"])
    assert len(server.requests) == 1 and not list((tmp_path / "llm").glob("*.json"))


def test_missing_or_rejected_key(server, tmp_path, monkeypatch):
    ds = fruit_dataset()
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(RuntimeError, match="needs an API key: set the environment variable OPENAI_API_KEY"):
        source(server, tmp_path)(ds, ds.aspects["color"])
    assert server.requests == []
    monkeypatch.setenv("MY_KEY", "k2")
    source(server, tmp_path, api_key_env="MY_KEY")(ds, ds.aspects["color"])
    assert server.requests[-1]["auth"] == "Bearer k2"
    server.default = {"status": 401}
    with pytest.raises(RuntimeError, match="rejected the API key from MY_KEY"):
        source(server, tmp_path, api_key_env="MY_KEY")(ds, ds.aspects["species"])
    server.default = {"status": 404}
    with pytest.raises(RuntimeError, match="refused the request \\(HTTP 404"):
        source(server, tmp_path, api_key_env=None)(ds, ds.aspects["species"])  # keyless local server


def test_declared_words_settings_and_config(server, tmp_path):
    ds = fruit_dataset(words=("red", "green", "blue"))
    assert source(server, tmp_path, use_declared=True)(ds, ds.aspects["color"]).words == ("red", "green", "blue")
    assert server.requests == []
    assert source(server, tmp_path)(ds, ds.aspects["color"]).words[0] == "red"  # llm=openai asks by default
    with pytest.raises(ValueError, match="no setting\\(s\\) timout"):
        WORD_SOURCES.get("openai")(timout=3)
    with pytest.raises(ValueError, match="not a valid template"):
        WORD_SOURCES.get("openai")(question="What are the {colour}?")

    from hydra import compose, initialize_config_module

    import mcbench.paths  # noqa: F401

    with initialize_config_module("mcbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=["llm=openai", f"paths.cache_dir={tmp_path}"])
    from mcbench.runner import _params

    params = _params(cfg.llm)
    assert params["cache_dir"] == f"{tmp_path}/llm" and params["api_key_env"] == "OPENAI_API_KEY"
    built = WORD_SOURCES.get("openai")(**params)  # every key of conf/llm/openai.yaml is a setting
    assert built.max_retries >= 1 and "{concepts}" in built.question


# ------------------------------------------------------------------------------------------ shipped words


def test_shipped_word_files_have_provenance_and_enough_words():
    for name, spec in PAPER_DATASETS.items():
        for aspect in spec.aspects:
            path = datasets_dir() / name / "words" / f"{aspect.name}.json"
            data = json.loads(path.read_text())
            for key in ("words", "prompt", "model", "date", "raw_reply", "note", "source"):
                assert key in data, (path, key)
            assert data["source"] in ("paper_code", "mcbench", "paper_code, extended by mcbench")
            words = read_words_file(path).words
            k = spec.expected.k.get(aspect.name) or len(spec.expected.counts.get(aspect.name, {}))
            assert len(words) >= (k or 2), (path, words)
            assert not any(w.lower().startswith("card with") for w in words)  # the papers' Cards bug is fixed
            if data["source"] == "mcbench":
                assert "not" in data["model"] and data["raw_reply"] is None and "mcbench" in data["note"]


def test_paper_lists_are_verbatim():
    species = json.loads((datasets_dir() / "fruit" / "words" / "species.json").read_text())
    assert species["raw_reply"].split(", ") == species["words"] and len(species["words"]) == 17
    assert species["prompt"] == "What are the common species of fruit?"
    pose = json.loads((datasets_dir() / "cmuface" / "words" / "pose.json").read_text())
    assert pose["words"][0] == "smiling" and "KNOWN PROBLEM" in pose["note"]


# ------------------------------------------------------------------------------------------------ the CLI


@pytest.mark.slow
def test_cli_folder_dataset_with_llm_openai(server, tmp_path):
    root = tmp_path / "photos"
    from mcbench.data.synthetic import generate

    pixels, labels, aspects = generate("shapes", 16, 0, 32)
    for a, asp in aspects.items():
        for i in range(16):
            path = root / a / asp.classes[labels[a][i]] / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels[i]).save(path)
    server.default = {"content": "1. red\n2. blue\n3. small\n4. large\n5. circle\n6. square"}
    from cli_inprocess import run_cli  # the real app, in this process

    env = {"MCBENCH_CACHE": str(tmp_path / "cache"), "WANDB_MODE": "offline"}
    args = [f"results_file={tmp_path}/runs.csv", "dataset=folder",
            f"dataset.root={root}", "method=kmeans_image", "encoder=tiny_clip_random", "logger=none",
            "protocol.n_restarts=2", "progress=false", "llm=openai", f"llm.base_url={server.url}",
            "llm.model=fake-gpt", "llm.retry_delay=0.01"]
    proc = run_cli(tmp_path, *args, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = pd.read_csv(tmp_path / "runs.csv")
    assert set(rows["aspect"]) == {"color", "shape", "size"} and (rows["words_source"] == "openai:fake-gpt").all()
    assert len(server.requests) == 3 and len(list((tmp_path / "cache" / "llm").glob("*.json"))) == 3


# ------------------------------------------------------------------------------------- invalid replies (issue 20)


@pytest.mark.parametrize(
    "reply, problem",
    [
        ("Sorry, I can't help with that, as an AI.", "reads as a refusal or non-answer"),
        ("I'm sorry, but as an AI language model I cannot list those: red, green, blue.", "reads as a refusal"),
        ("No.", "lists 1 word(s) (no) but the aspect has k=2 classes"),
        ("red, " + "x" * 60, "items that are not words"),
    ],
)
def test_an_invalid_reply_is_never_cached_and_names_the_cache_file(server, tmp_path, reply, problem):
    server.default = {"content": reply}
    ds = fruit_dataset()
    src = source(server, tmp_path)
    with pytest.raises(ValueError) as err:
        src(ds, ds.aspects["color"])
    msg = str(err.value)
    assert problem in msg and "Nothing was cached" in msg and "\n" not in msg
    assert str(tmp_path / "llm") in msg and ".json" in msg  # the cache file it would have been
    assert not list((tmp_path / "llm").glob("*.json"))
    server.default = {"content": "Red, yellow, green, and purple."}  # the server recovers: asked again, cached
    assert src(ds, ds.aspects["color"]).words == ("red", "yellow", "green", "purple")
    assert len(list((tmp_path / "llm").glob("*.json"))) == 1


def test_an_invalid_cached_reply_is_asked_again_or_named_offline(server, tmp_path, caplog):
    """A refusal cached by an older mcbench is never used: asked again online (the file is named in a warning
    and replaced), one error naming the file offline."""
    ds = fruit_dataset()
    src = source(server, tmp_path)
    src(ds, ds.aspects["color"])
    (cache,) = (tmp_path / "llm").glob("*.json")
    record = json.loads(cache.read_text())
    record.update(words=["sorry", "as an ai"], raw_reply="Sorry, I can't help with that, as an AI.")
    cache.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=f"the cached reply {re.escape(str(cache))} cannot serve as reference words: "
                                         f"it reads as a refusal.*Delete that file"):
        source(server, tmp_path, offline=True)(ds, ds.aspects["color"])
    before = len(server.requests)
    with caplog.at_level("WARNING", logger="mcbench.llm"):
        words = src(ds, ds.aspects["color"])
    assert words.words == ("red", "yellow", "green", "purple") and len(server.requests) == before + 1
    assert str(cache) in caplog.text and "asking again" in caplog.text
    assert json.loads(cache.read_text())["words"] == list(words.words)  # replaced by the valid reply
