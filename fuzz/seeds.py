"""Writes the fuzz targets' seed corpora (fuzz/corpus/<target>/): small,
valid (or nearly valid) inputs of each kind, so that the fuzzer and the
stable smoke test (crates/fuzz-targets/tests/smoke.rs) start from inputs
that reach deep into each parser. Python standard library only.

    python3 fuzz/seeds.py
"""

import base64
import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")
FIX = os.path.join(ROOT, "tests", "fixtures")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def safetensors(tensors):
    """tensors: [(name, dtype, shape, bytes)] -> a safetensors file."""
    header, blob = {}, b""
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf(kvs, tensors):
    """kvs: [(key, type_id, packed value)]; tensors: [(name, dims, ggml type, bytes)]."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for key, t, v in kvs:
        out += gguf_string(key) + struct.pack("<I", t) + v
    offset, blob = 0, b""
    for name, dims, ty, data in tensors:
        out += gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ty, offset)
        pad = -len(data) % 32
        blob += data + b"\0" * pad
        offset += len(data) + pad
    out += b"\0" * (-len(out) % 32)
    return out + blob


def main():
    shutil.rmtree(OUT, ignore_errors=True)

    for m in ("tiny-450m", "tiny-1.6b", "tiny-3b", "tiny-lfm2.5"):
        put("config", f"{m}.config.json", read(os.path.join(FIX, "models", m, "config.json")))
    put("config", "processor_config.json", read(os.path.join(FIX, "models", "tiny-450m", "processor_config.json")))
    put("config", "legacy.json", json.dumps({
        "model_type": "lfm2-vl", "downsample_factor": 2, "vision_feature_layer": -2,
        "projector_use_layernorm": False, "min_image_tokens": 32, "do_image_splitting": True,
        "text_config": {"model_type": "lfm2", "hidden_size": 16, "num_hidden_layers": 2,
                        "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 64,
                        "block_ff_dim": 32, "full_attn_idxs": [1], "rope_theta": 10000.0,
                        "tie_embedding": False},
        "vision_config": {"hidden_size": 8, "intermediate_size": 16, "num_attention_heads": 2,
                          "num_hidden_layers": 3, "num_patches": 16, "patch_size": 16},
    }))

    f32 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.0)
    put("safetensors", "two.safetensors", safetensors([
        ("a.weight", "F32", [2, 2], f32),
        ("b.weight", "BF16", [3], b"\x80\x3f\x00\x40\x40\x40"),
        ("c.weight", "F16", [1, 2], b"\x00\x3c\x00\xc0"),
    ]))
    put("safetensors", "empty.safetensors", safetensors([]))

    kvs = [
        ("general.architecture", 8, gguf_string("lfm2")),
        ("lfm2.block_count", 4, struct.pack("<I", 2)),
        ("lfm2.rope.freq_base", 6, struct.pack("<f", 10000.0)),
        ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 2) + gguf_string("a") + gguf_string("b")),
    ]
    q8 = struct.pack("<e", 0.5) + bytes(range(32))  # one Q8_0 block
    put("gguf", "small.gguf", gguf(kvs, [
        ("token_embd.weight", [4, 2], 0, f32 + f32),
        ("blk.0.ffn_up.weight", [32, 1], 8, q8),
    ]))

    for name in ("tiny_20x30.png", "chat_72x72.png"):
        put("image", name, read(os.path.join(FIX, "cases", "images", name)))
    # A 2x2 24-bit BMP and a 1x1 8-bit gray PGM.
    row = b"\x00\x00\xff\xff\xff\xff\x00\x00"  # two BGR pixels + 2 bytes padding
    bmp = b"BM" + struct.pack("<IHHI", 54 + 16, 0, 0, 54)
    bmp += struct.pack("<IiiHHIIiiII", 40, 2, 2, 1, 24, 0, 16, 2835, 2835, 0, 0) + row + row
    put("image", "two.bmp", bmp)
    put("image", "one.pgm", b"P5\n1 1\n255\n\x80")

    put("chat", "image_and_text.json", json.dumps([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]},
        {"role": "assistant", "content": "A cat."},
        {"role": "user", "content": [{"type": "text", "text": "And <image> here?"}, {"type": "image"}]},
    ]))
    put("chat", "text.json", json.dumps([{"role": "user", "content": "<|im_start|>hi<|im_end|>"}]))

    put("tokenizer", "plain.txt", "The quick brown fox jumps over the lazy dog. 42 cats!")
    put("tokenizer", "special.txt", "<|startoftext|><|im_start|>user\n<image><|img_row_1_col_2|>é 漢字 🙂<|im_end|>")

    png = base64.b64encode(read(os.path.join(FIX, "cases", "images", "tiny_20x30.png"))).decode()
    put("request", "chat.json", json.dumps({
        "model": "m", "max_tokens": 8, "temperature": 0.7, "stop": ["\n"], "stream": True,
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Describe."},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + png}},
        ]}],
    }))
    put("request", "tools.json", json.dumps({
        "messages": [{"role": "user", "content": "Weather?"}],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
        "tool_choice": "required",
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
    }))
    put("request", "completion.json", json.dumps({"prompt": ["Once upon", "a time"], "max_tokens": 4, "seed": 3}))

    put("tool_calls", "one.txt", "<|tool_call_start|>[weather(city=\"Oslo\", days=3)]<|tool_call_end|>")
    put("tool_calls", "two.txt", "Sure. <|tool_call_start|>[a(x=[1, 2.5, None], y={'k': True}), b()]<|tool_call_end|> done")

    put("sampling", "greedy.bin", b"\x01" + struct.pack("<f", 1.0) + b"\x05" + struct.pack("<3f", 1.0, 0.0, 1.0)
        + b"\x00" * 6 + struct.pack("<6f", 0.5, -1.0, 3.0, float("nan"), float("inf"), 2.0))
    put("sampling", "topk.bin", b"\x00" + struct.pack("<f", 0.7) + b"\x02" + struct.pack("<3f", 0.9, 0.05, 1.1)
        + b"\x07\x01\x02\x03\x04\x05" + struct.pack("<8f", *[0.1 * i for i in range(8)]))


if __name__ == "__main__":
    main()
