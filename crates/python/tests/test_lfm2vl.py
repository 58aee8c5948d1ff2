"""The Python package (`pip install ./crates/python`) on the tiny fixture
checkpoints, against the command-line binary (`cargo build -p cli`:
$LFM2VL_BIN, else $CARGO_TARGET_DIR/debug/lfm2vl, else target/debug/lfm2vl):

- greedy chat with an image gives exactly `lfm2vl generate --greedy
  --json`'s prompt and generated ids, on the CPU and on wgpu (when a
  device exists; $LFM_REQUIRE_GPU makes its absence a failure);
- streaming yields pieces that make the whole text, and a `completion`
  equal to the unstreamed one; closing a stream stops it and leaves the
  model usable;
- an image as a path, as bytes, as a PIL image (RGB, RGBA, gray) and as a
  numpy array gives the same tokens as the decoded file;
- a second turn reuses the cache and equals a fresh model's answer;
- a JSON schema constrains the reply, and required tools give calls;
- every refusal (a missing model, a corrupt file, empty or malformed
  images, image counts, bad options, a prompt past the context, a bad
  schema) is an `lfm2vl.Error` naming the problem, never a crash.

Run: `pip install ./crates/python pytest pillow numpy && pytest crates/python/tests`.
"""

import json
import os
import pathlib
import subprocess

import numpy as np
import pytest
from PIL import Image

import lfm2vl

ROOT = pathlib.Path(__file__).resolve().parents[3]
MODELS = ROOT / "tests" / "fixtures" / "models"
IMAGE = ROOT / "tests" / "fixtures" / "cases" / "images" / "small_100x150.png"
PROMPT = "What is in this image?"
MAX_TOKENS = 16


def binary() -> pathlib.Path:
    if os.environ.get("LFM2VL_BIN"):
        return pathlib.Path(os.environ["LFM2VL_BIN"])
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    return target / "debug" / "lfm2vl"


def cli_greedy(model: pathlib.Path, backend: str, messages: list, tmp: pathlib.Path) -> dict:
    path = tmp / "messages.json"
    path.write_text(json.dumps(messages))
    out = subprocess.run(
        [str(binary()), "generate", "--json", "--greedy", "--max-new-tokens", str(MAX_TOKENS),
         "--backend", backend, "--max-len", "1024", "--model", str(model),
         "--messages", str(path)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "LFM_THREADS": "2"},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def image_messages(image=None) -> list:
    part = {"type": "image"} if image is None else {"type": "image", "image": image}
    return [{"role": "user", "content": [part, {"type": "text", "text": PROMPT}]}]


_models = {}


def model(name: str = "tiny-450m", backend: str = "cpu") -> lfm2vl.Model:
    """One loaded model per (name, backend), each test on a fresh fork."""
    key = (name, backend)
    if key not in _models:
        _models[key] = lfm2vl.Model(MODELS / name, backend=backend, threads=2, max_len=1024)
    return _models[key].fork()


def gpu_or_skip():
    try:
        return model("tiny-450m", "wgpu")
    except lfm2vl.Error as e:
        if os.environ.get("LFM_REQUIRE_GPU"):
            raise
        pytest.skip(f"no wgpu device: {e}")


@pytest.mark.parametrize("name", ["tiny-450m", "tiny-1.6b"])
def test_greedy_ids_equal_the_cli(name, tmp_path):
    want = cli_greedy(MODELS / name, "cpu", image_messages(str(IMAGE)), tmp_path)
    m = model(name)
    got = m.chat(image_messages(IMAGE), max_tokens=MAX_TOKENS)
    assert got.prompt_ids == want["prompt_ids"]
    assert got.token_ids == want["generated_ids"]
    assert got.text == want["text"]
    assert got.finish_reason in ("stop", "length")
    assert m.prompt_ids(image_messages(IMAGE)) == want["prompt_ids"]
    # generate() is the same single turn, the image first.
    again = model(name).generate(PROMPT, images=[IMAGE], max_tokens=MAX_TOKENS)
    assert again.token_ids == want["generated_ids"]


def test_greedy_ids_equal_the_cli_on_wgpu(tmp_path):
    m = gpu_or_skip()
    want = cli_greedy(MODELS / "tiny-450m", "wgpu", image_messages(str(IMAGE)), tmp_path)
    got = m.chat(image_messages(IMAGE), max_tokens=MAX_TOKENS)
    assert got.prompt_ids == want["prompt_ids"]
    assert got.token_ids == want["generated_ids"]
    assert "cpu" not in m.backend


def test_stream_pieces_make_the_text():
    whole = model().chat(image_messages(IMAGE), max_tokens=MAX_TOKENS)
    s = model().chat(image_messages(IMAGE), max_tokens=MAX_TOKENS, stream=True)
    assert s.completion is None
    pieces = list(s)
    assert len(pieces) > 1
    assert "".join(pieces) == whole.text
    assert s.completion is not None
    assert s.completion.token_ids == whole.token_ids
    assert list(s) == []


def test_closing_a_stream_stops_it_and_the_model_goes_on():
    m = model()
    with m.chat(image_messages(IMAGE), max_tokens=200, stream=True) as s:
        next(s)
    pieces = list(s)  # what was already sent, then the end
    assert s.completion is not None
    assert s.completion.finish_reason == "cancelled"
    assert len(s.completion.token_ids) < 200
    assert len(pieces) < 200
    m.reset()
    after = m.chat(image_messages(IMAGE), max_tokens=MAX_TOKENS)
    assert after.token_ids == model().chat(image_messages(IMAGE), max_tokens=MAX_TOKENS).token_ids


def test_every_image_form_gives_the_same_tokens():
    want = model().chat(image_messages(IMAGE), max_tokens=MAX_TOKENS).token_ids
    pil = Image.open(IMAGE)
    assert pil.mode == "RGB"
    rgba = np.concatenate([np.asarray(pil), np.full((*np.asarray(pil).shape[:2], 1), 255, np.uint8)], axis=2)
    forms = {
        "str": str(IMAGE),
        "bytes": IMAGE.read_bytes(),
        "pil": pil,
        "pil-rgba": pil.convert("RGBA"),
        "array": np.asarray(pil),
        "array-rgba-opaque": rgba,
        # A strided view: tobytes() packs it.
        "array-view": np.asarray(pil)[:, ::1, :],
    }
    for name, form in forms.items():
        got = model().chat(image_messages(form), max_tokens=MAX_TOKENS).token_ids
        assert got == want, name
    # Gray pixels equal the same gray file decoded.
    gray = pil.convert("L")
    by_pixels = model().chat(image_messages(gray), max_tokens=MAX_TOKENS).token_ids
    by_array = model().chat(image_messages(np.asarray(gray)), max_tokens=MAX_TOKENS).token_ids
    assert by_pixels == by_array


def test_second_turn_reuses_the_cache():
    m = model()
    first = m.chat(image_messages(IMAGE), max_tokens=6)
    turn2 = image_messages(IMAGE) + [
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "And the colours?"},
    ]
    second = m.chat(turn2, max_tokens=6)
    assert second.reused_tokens >= len(first.prompt_ids)
    assert second.image_seconds == 0
    fresh = model().chat(turn2, max_tokens=6)
    assert fresh.reused_tokens == 0
    assert fresh.token_ids == second.token_ids


def test_json_schema_and_tools():
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 12},
                       "legs": {"type": "integer", "minimum": 0, "maximum": 8}},
        "required": ["name", "legs"],
        "additionalProperties": False,
    }
    m = model()
    for seed in range(3):
        m.reset()
        out = m.chat([{"role": "user", "content": "Describe the animal as JSON."}],
                     json_schema=schema, temperature=1.0, seed=seed, max_tokens=200)
        assert out.finish_reason == "stop", out.text
        v = json.loads(out.text)
        assert set(v) == {"name", "legs"} and isinstance(v["legs"], int)
    tools = [{"type": "function", "function": {
        "name": "weather", "description": "The weather in a city.",
        "parameters": {"type": "object",
                       "properties": {"city": {"type": "string", "maxLength": 10}},
                       "required": ["city"]}}}]
    m.reset()
    out = m.chat([{"role": "user", "content": "Weather in Oslo?"}], tools=tools,
                 tool_choice="required", max_tokens=100)
    assert out.tool_calls, out.text
    assert all(c.name == "weather" and isinstance(c.arguments["city"], str) for c in out.tool_calls)


def expect_error(fn, *fragments):
    with pytest.raises(lfm2vl.Error) as e:
        fn()
    for f in fragments:
        assert f in str(e.value), str(e.value)


def test_refusals_are_errors(tmp_path):
    expect_error(lambda: lfm2vl.Model(tmp_path / "no-such-model"), "not found")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for f in (MODELS / "tiny-450m").iterdir():
        data = f.read_bytes()
        (corrupt / f.name).write_bytes(data[: len(data) // 2] if f.suffix == ".safetensors" else data)
    expect_error(lambda: lfm2vl.Model(corrupt, backend="cpu"), "safetensors")
    expect_error(lambda: lfm2vl.Model(MODELS / "tiny-450m", backend="tpu"), "tpu")
    expect_error(lambda: lfm2vl.Model(MODELS / "tiny-450m", weights="q3"), "unknown weights")

    m = model()
    bad_file = tmp_path / "bad.png"
    bad_file.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    expect_error(lambda: m.chat(image_messages(bad_file)), "bad.png")
    expect_error(lambda: m.chat(image_messages(b"garbage")), "#0")
    expect_error(lambda: m.chat(image_messages(tmp_path / "missing.png")), "missing.png")
    expect_error(lambda: m.chat(image_messages(np.zeros((0, 4, 3), np.uint8))), "empty")
    expect_error(lambda: m.chat(image_messages(np.zeros((4, 4, 3), np.float32))), "uint8")
    expect_error(lambda: m.chat(image_messages(np.zeros((4, 4, 2), np.uint8))), "shape")
    with pytest.raises(TypeError):
        m.chat(image_messages(12))
    expect_error(lambda: m.chat(image_messages()), "no image")
    expect_error(lambda: m.chat([{"role": "user", "content": "hi"}], images=[IMAGE]),
                 "no image part")
    expect_error(lambda: m.chat([{"role": "user", "content": "hi"}], preset="hot"), "hot")
    expect_error(lambda: m.chat([{"role": "user", "content": "hi"}], top_p=2.0), "top_p")
    expect_error(lambda: m.chat([{"role": "user", "content": "hi"}],
                                json_schema={"type": "object"}, regex="a+"), "at most one")
    expect_error(lambda: m.chat([{"role": "user", "content": "hi"}], regex="(unclosed"), "regex")
    expect_error(lambda: m.chat([{"role": "user", "content": "hi"}], tool_choice="required"),
                 "tool_choice without tools")
    expect_error(lambda: m.chat([{"role": "user", "content": "word " * 2000}]), "context")
    expect_error(lambda: m.chat([{"role": "user"}]), "messages")
    # Still usable after every refusal.
    assert m.chat([{"role": "user", "content": "hi"}], max_tokens=2).token_ids
