#!/usr/bin/env python3
"""Write a randomly initialised LFM2-350M or LFM2-1.2B (llama.cpp arch `lfm2`) GGUF.

Mirrors what the vendored conversion/lfm2.py (LFM2Model) + conversion/base.py
(TextModel.set_gguf_parameters / tensor type selection) would emit for the
published LiquidAI/LFM2-350M (or LFM2-1.2B) config, but with random weights and a fake
65536-token gpt2-style BPE vocab.

usage: make_lfm2_gguf.py OUT.gguf {bf16,f16,f32} [seed] [350m|1.2b]
"""
import sys
import numpy as np
import gguf

out_path, kind = sys.argv[1], sys.argv[2]
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
# 350m: LFM2-350M (LFM2-VL-450M's text tower); 1.2b: LFM2-1.2B (LFM2-VL-1.6B's).
size = sys.argv[4] if len(sys.argv) > 4 else "350m"

# ---- published LFM2-350M / LFM2-1.2B configs --------------------------------
hidden, n_head, block_ff_dim = {"350m": (1024, 16, 6656), "1.2b": (2048, 32, 12288)}[size]
n_layer = 16
n_kv = 8
head_dim = hidden // n_head  # 64
vocab = 65536
auto_adjust = True
ffn_mult = 1.0
multiple_of = 256
L_cache = 3
norm_eps = 1e-5
rope_theta = 1000000.0
full_attn_idxs = [2, 5, 8, 10, 12, 14]
max_pos = 128000
bos_id, eos_id, pad_id = 1, 7, 0

# same formula as conversion/lfm2.py::_add_feed_forward_length
ff = block_ff_dim
if auto_adjust:
    ff = int(2 * ff / 3)
    if ffn_mult is not None:
        ff = int(ffn_mult * ff)
    ff = multiple_of * ((ff + multiple_of - 1) // multiple_of)
assert ff == {"350m": 4608, "1.2b": 8192}[size], ff

layer_types = ["full_attention" if i in full_attn_idxs else "conv" for i in range(n_layer)]
head_count_kv = [n_kv if t != "conv" else 0 for t in layer_types]

qtype = {"bf16": gguf.GGMLQuantizationType.BF16,
         "f16": gguf.GGMLQuantizationType.F16,
         "f32": gguf.GGMLQuantizationType.F32}[kind]
ftype = {"bf16": gguf.LlamaFileType.MOSTLY_BF16,
         "f16": gguf.LlamaFileType.MOSTLY_F16,
         "f32": gguf.LlamaFileType.ALL_F32}[kind]

w = gguf.GGUFWriter(out_path, "lfm2")
w.add_type(gguf.GGUFType.MODEL)
w.add_name({"350m": "LFM2-350M-random", "1.2b": "LFM2-1.2B-random"}[size])
w.add_file_type(ftype)
w.add_quantization_version(gguf.GGML_QUANT_VERSION)
# TextModel.set_gguf_parameters
w.add_block_count(n_layer)
w.add_context_length(max_pos)
w.add_embedding_length(hidden)
w.add_head_count(n_head)
w.add_head_count_kv(head_count_kv)
w.add_rope_freq_base(rope_theta)
w.add_layer_norm_rms_eps(norm_eps)
# LFM2Model.set_gguf_parameters
w.add_vocab_size(vocab)
w.add_shortconv_l_cache(L_cache)
w.add_feed_forward_length(ff)

# ---- fake tokenizer: gpt2-style byte-level BPE ------------------------------
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]

specials = ["<|pad|>", "<|startoftext|>", "<|endoftext|>", "<|fim_pre|>", "<|fim_mid|>",
            "<|fim_suf|>", "<|im_start|>", "<|im_end|>"]
tokens = list(specials)
toktypes = [gguf.TokenType.CONTROL] * len(specials)
byte_toks = bytes_to_unicode()
tokens += byte_toks
toktypes += [gguf.TokenType.NORMAL] * len(byte_toks)
merges = []
for a, b in [("Ġ", "t"), ("Ġ", "a"), ("h", "e"), ("i", "n"), ("r", "e"), ("o", "n"),
             ("Ġt", "he"), ("e", "r"), ("Ġ", "s"), ("a", "t")]:
    merges.append(f"{a} {b}")
    if a + b not in tokens:
        tokens.append(a + b)
        toktypes.append(gguf.TokenType.NORMAL)
i = 0
while len(tokens) < vocab:
    tokens.append(f"<|filler_{i}|>")  # never produced by BPE; just pads vocab to 65536
    toktypes.append(gguf.TokenType.NORMAL)
    i += 1
assert len(tokens) == vocab and len(set(tokens)) == vocab

w.add_tokenizer_model("gpt2")
w.add_tokenizer_pre("lfm2")
w.add_token_list(tokens)
w.add_token_types([int(t) for t in toktypes])
w.add_token_merges(merges)
w.add_bos_token_id(bos_id)
w.add_eos_token_id(eos_id)
w.add_pad_token_id(pad_id)
w.add_add_bos_token(True)
w.add_add_eos_token(False)

# ---- random weights ----------------------------------------------------------
rng = np.random.default_rng(seed)

def mat(out_f, in_f):
    return (rng.standard_normal((out_f, in_f), dtype=np.float32) / np.sqrt(in_f)).astype(np.float32)

def norm(n):
    return (1.0 + 0.02 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)

n_params = 0

def add(name, arr, force_f32=False):
    global n_params
    n_params += arr.size
    if force_f32 or qtype == gguf.GGMLQuantizationType.F32:
        w.add_tensor(name, arr.astype(np.float32))
    else:
        q = gguf.quants.quantize(arr, qtype)
        w.add_tensor(name, q, raw_dtype=qtype)

# numpy shape = reversed ggml ne (i.e. HF [out, in] layout)
add("token_embd.weight", (rng.standard_normal((vocab, hidden), dtype=np.float32)).astype(np.float32))
add("token_embd_norm.weight", norm(hidden), force_f32=True)  # LFM2's final norm (LLM_TENSOR_OUTPUT_NORM_LFM2)
for il in range(n_layer):
    p = f"blk.{il}."
    add(p + "attn_norm.weight", norm(hidden), force_f32=True)   # operator_norm
    add(p + "ffn_norm.weight", norm(hidden), force_f32=True)
    if layer_types[il] == "conv":
        add(p + "shortconv.in_proj.weight", mat(3 * hidden, hidden))
        add(p + "shortconv.out_proj.weight", mat(hidden, hidden))
        add(p + "shortconv.conv.weight",
            (0.5 * rng.standard_normal((hidden, L_cache), dtype=np.float32)).astype(np.float32), force_f32=True)
    else:
        add(p + "attn_q.weight", mat(n_head * head_dim, hidden))
        add(p + "attn_k.weight", mat(n_kv * head_dim, hidden))
        add(p + "attn_v.weight", mat(n_kv * head_dim, hidden))
        add(p + "attn_output.weight", mat(hidden, n_head * head_dim))
        add(p + "attn_q_norm.weight", norm(head_dim), force_f32=True)
        add(p + "attn_k_norm.weight", norm(head_dim), force_f32=True)
    add(p + "ffn_gate.weight", mat(ff, hidden))
    add(p + "ffn_up.weight", mat(ff, hidden))
    add(p + "ffn_down.weight", mat(hidden, ff))
# tie_embedding: no output.weight (llama.cpp duplicates token_embd)

w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file(progress=False)
w.close()
print(f"wrote {out_path}: {n_params} params ({n_params/1e6:.2f} M), ff={ff}, head_count_kv={head_count_kv}")
