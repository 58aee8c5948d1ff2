"""`lfm2vl serve` through the official OpenAI Python client.

Starts `lfm2vl serve --port 0` on the tiny fixture checkpoint (the binary
from `cargo build -p cli`: $LFM2VL_BIN, else $CARGO_TARGET_DIR/debug/lfm2vl,
else target/debug/lfm2vl) and checks:
- a chat with an image (a data: URI of a fixture PNG), greedy
  (temperature=0), streamed and not, equals `lfm2vl generate --greedy --json`
  on the same messages (the image written to a file for the CLI);
- the stream's shape: the role first, content deltas, a finish reason, a
  usage chunk with no choices (stream_options.include_usage);
- 8 concurrent streamed requests (mixed text-only and image, different
  prompts) all complete, each equal to its output when run alone;
- the `speculative` extension leaves a greedy answer unchanged;
- structured output: `response_format` json_schema (strict) gives JSON
  valid under the schema for seeded sampled requests, streamed and not,
  `finish_reason: "length"` when max_tokens cuts it short, and a schema
  that does not compile is a 400 naming `response_format`;
- tools: `tool_choice` required (and a named function) gives well-formed
  `tool_calls` whose arguments validate against the tool's parameters,
  streamed and not; `auto` answers well-formed; a history with calls and
  tool results is accepted;
- SIGTERM stops the server cleanly (exit status 0).

Run: `pip install openai pytest jsonschema && pytest tests/serve`.
"""

import base64
import json
import os
import pathlib
import subprocess
import threading
import time
import urllib.error
import urllib.request

import jsonschema
import openai
import pytest
from openai import OpenAI

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / "tests" / "fixtures" / "models" / "tiny-450m"
IMAGES = ROOT / "tests" / "fixtures" / "cases" / "images"
MAX_TOKENS = 20
MAX_LEN = "1024"


def binary() -> pathlib.Path:
    if os.environ.get("LFM2VL_BIN"):
        return pathlib.Path(os.environ["LFM2VL_BIN"])
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    return target / "debug" / "lfm2vl"


def env() -> dict:
    return {**os.environ, "LFM_THREADS": "2"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "stderr.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [str(binary()), "serve", "--port", "0", "--backend", "cpu",
             "--model", str(MODEL), "--max-len", MAX_LEN, "--parallel", "4"],
            stdout=subprocess.PIPE, stderr=err, env=env(),
        )
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("listening on http://"), (line, log.read_text())
        base = line.split("listening on ", 1)[1].strip()
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except urllib.error.HTTPError as e:
                assert e.code == 503 and json.load(e) == {"status": "loading"}
            except urllib.error.URLError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.time() < deadline, "never healthy: " + log.read_text()
            time.sleep(0.05)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def client(server):
    base, _ = server
    return OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=120)


def data_uri(path: pathlib.Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def openai_messages(text: str, image: pathlib.Path | None) -> list:
    if image is None:
        return [{"role": "user", "content": text}]
    return [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": data_uri(image)}},
        {"type": "text", "text": text},
    ]}]


def cli_greedy(text: str, image: pathlib.Path | None, tmp: pathlib.Path) -> str:
    """`lfm2vl generate --greedy --json` on the same chat (the image copied to a file)."""
    content: list = [{"type": "text", "text": text}]
    if image is not None:
        copy = tmp / ("copy_" + image.name)
        copy.write_bytes(image.read_bytes())
        content.insert(0, {"type": "image", "image": str(copy)})
    msgs = tmp / "messages.json"
    msgs.write_text(json.dumps([{"role": "user", "content": content}]))
    out = subprocess.run(
        [str(binary()), "generate", "--json", "--greedy", "--backend", "cpu",
         "--model", str(MODEL), "--max-len", MAX_LEN,
         "--max-new-tokens", str(MAX_TOKENS), "--messages", str(msgs)],
        capture_output=True, env=env(), check=True,
    )
    return json.loads(out.stdout)["text"]


def chat_whole(client, text, image):
    r = client.chat.completions.create(
        model="tiny-450m", messages=openai_messages(text, image),
        temperature=0, max_tokens=MAX_TOKENS,
    )
    assert r.object == "chat.completion"
    assert len(r.choices) == 1 and r.choices[0].message.role == "assistant"
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert 0 < r.usage.completion_tokens <= MAX_TOKENS
    return r.choices[0].message.content


def chat_streamed(client, text, image):
    stream = client.chat.completions.create(
        model="tiny-450m", messages=openai_messages(text, image),
        temperature=0, max_tokens=MAX_TOKENS, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and not any(finishes[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_greedy_image_chat_equals_the_cli(client, tmp_path):
    image = IMAGES / "small_100x150.png"
    text = "What is in this image?"
    want = cli_greedy(text, image, tmp_path)
    assert chat_whole(client, text, image) == want
    assert chat_streamed(client, text, image) == want
    text_only = "The quick brown fox jumps over the lazy dog."
    assert chat_whole(client, text_only, None) == cli_greedy(text_only, None, tmp_path)


def test_speculative_extension_gives_the_same_greedy_text(client, tmp_path):
    """`speculative: true` (prompt lookup drafts, verified inside the
    scheduler's batches) changes no token of a greedy answer."""
    for text, image in [("Repeat: one two three one two three one two", None),
                        ("What is in this image?", IMAGES / "small_100x150.png")]:
        want = cli_greedy(text, image, tmp_path)
        for stream in (False, True):
            r = client.chat.completions.create(
                model="tiny-450m", messages=openai_messages(text, image),
                temperature=0, max_tokens=MAX_TOKENS, stream=stream,
                extra_body={"speculative": True},
            )
            got = ("".join(c.choices[0].delta.content or "" for c in r if c.choices)
                   if stream else r.choices[0].message.content)
            assert got == want, (text, stream, got, want)


PET = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 10},
        "kind": {"enum": ["cat", "dog", "bird"]},
        "code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 5}, "maxItems": 2},
        "box": {"type": "object", "properties": {
            "x": {"type": "integer", "minimum": 0, "maximum": 99},
            "ok": {"type": "boolean"}}, "required": ["x"], "additionalProperties": False},
    },
    "required": ["name", "kind", "code", "box"],
    "additionalProperties": False,
}


def pet_format():
    return {"type": "json_schema", "json_schema": {"name": "pet", "schema": PET, "strict": True}}


def streamed_text(stream):
    chunks = list(stream)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), finishes[-1]


def test_json_schema_response_format_gives_valid_json(client):
    for seed in range(6):
        stream = seed % 2 == 1
        r = client.chat.completions.create(
            model="tiny-450m", messages=openai_messages("Describe a pet as JSON.", None),
            temperature=1, seed=seed, max_tokens=300, stream=stream,
            response_format=pet_format(),
        )
        if stream:
            text, finish = streamed_text(r)
        else:
            text, finish = r.choices[0].message.content, r.choices[0].finish_reason
        assert finish == "stop", (seed, text)
        jsonschema.validate(json.loads(text), PET)
    r = client.chat.completions.create(
        model="tiny-450m", messages=openai_messages("Any JSON object.", None),
        temperature=1, seed=3, max_tokens=4, response_format={"type": "json_object"},
    )
    assert r.choices[0].finish_reason == "length"
    assert r.choices[0].message.content.startswith("{")
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model="tiny-450m", messages=openai_messages("x", None), max_tokens=4,
            response_format={"type": "json_schema", "json_schema": {
                "name": "bad", "strict": True, "schema": {"type": "array", "uniqueItems": True}}},
        )
    assert e.value.body["param"] == "response_format", e.value.body


TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "maxLength": 10},
            "days": {"type": "integer", "minimum": 1, "maximum": 7}},
            "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "now", "parameters": {"type": "object", "properties": {}}}},
]


def check_calls(calls, allowed):
    assert calls, "no tool calls"
    params = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
    for c in calls:
        assert c.type == "function" and c.id.startswith("call_")
        assert c.function.name in allowed, c
        jsonschema.validate(json.loads(c.function.arguments), params[c.function.name])


def test_tools_give_well_formed_tool_calls(client):
    question = openai_messages("What is the weather in Oslo?", None)
    named = {"type": "function", "function": {"name": "now"}}
    for choice, allowed in [("required", {"get_weather", "now"}), (named, {"now"})]:
        for seed in range(3):
            r = client.chat.completions.create(
                model="tiny-450m", messages=question, tools=TOOLS, tool_choice=choice,
                temperature=1, seed=seed, max_tokens=200,
            )
            assert r.choices[0].finish_reason == "tool_calls", r
            check_calls(r.choices[0].message.tool_calls, allowed)
            stream = client.chat.completions.create(
                model="tiny-450m", messages=question, tools=TOOLS, tool_choice=choice,
                temperature=1, seed=seed, max_tokens=200, stream=True,
            )
            chunks = list(stream)
            deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
            assert [d.function.name for d in deltas] == [
                t.function.name for t in r.choices[0].message.tool_calls]
            assert [d.function.arguments for d in deltas] == [
                t.function.arguments for t in r.choices[0].message.tool_calls]
            assert chunks[-1].choices[0].finish_reason == "tool_calls"
    # auto: the model decides; the reply is well formed either way.
    r = client.chat.completions.create(
        model="tiny-450m", messages=question, tools=TOOLS, temperature=0, max_tokens=20,
    )
    m = r.choices[0].message
    assert m.tool_calls is None or check_calls(m.tool_calls, {"get_weather", "now"}) is None
    assert r.choices[0].finish_reason in ("stop", "length", "tool_calls")
    # A history with a call and its result.
    call = client.chat.completions.create(
        model="tiny-450m", messages=question, tools=TOOLS, tool_choice="required",
        temperature=1, seed=1, max_tokens=200,
    ).choices[0].message.tool_calls[0]
    history = question + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function",
             "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 3}'},
    ]
    r = client.chat.completions.create(
        model="tiny-450m", messages=history, tools=TOOLS, temperature=0, max_tokens=10,
    )
    assert r.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_models_lists_the_served_model(client):
    models = client.models.list()
    assert [m.id for m in models.data] == ["tiny-450m"]


def test_eight_concurrent_streams_each_equal_their_solo_output(client):
    requests = [
        ("Tell me a story about 42 cats!", None),
        ("What is in this image?", IMAGES / "small_100x150.png"),
        ("Name three colours.", None),
        ("Describe the picture.", IMAGES / "chat_72x72.png"),
        ("Count to ten, please.", None),
        ("What shape is this?", IMAGES / "wide_90x300.png"),
        ("Hello there, who are you?", None),
        ("Is this bright or dark?", IMAGES / "tiny_20x30.png"),
    ]
    solo = [chat_whole(client, t, i) for t, i in requests]
    got = [None] * len(requests)
    errors = []
    start = threading.Barrier(len(requests))

    def worker(k):
        try:
            start.wait(timeout=60)
            got[k] = chat_streamed(client, *requests[k])
        except Exception as e:  # reported below with its request
            errors.append((k, repr(e)))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    for k, (text, image) in enumerate(requests):
        assert got[k] == solo[k], (text, image, got[k], solo[k])


def test_sigterm_stops_the_server_cleanly(server):
    # Last in this file: the module's server ends here.
    _, proc = server
    proc.terminate()
    assert proc.wait(timeout=30) == 0
