#!/usr/bin/env python3
"""Write a randomly initialised LFM2-VL-450M mmproj GGUF (llama.cpp `clip`, projector type `lfm2`).

Mirrors what the vendored converter would emit for the published LiquidAI/LFM2-VL-450M
config with `convert_hf_to_gguf.py --mmproj --outtype f16`:
  conversion/lfm2.py::LFM2VLModel + conversion/base.py::MmprojModel (metadata),
  conversion/base.py::ModelBase.prepare_tensors (tensor types),
  gguf-py tensor_mapping (HF name -> GGUF name).

Published config (vision_config / top level):
  siglip2_vision_model: hidden 768, intermediate 3072, 12 heads, 12 layers, patch 16,
  num_patches 256 (16x16 pos-emb grid), layer_norm_eps 1e-6, gelu_pytorch_tanh, vision_use_head false
  vision_feature_layer -1  -> converter: layers_to_drop = -(-1+1) = 0 -> block_count 12
  downsample_factor 2, projector_hidden_size 2560, projector_bias true, text hidden 1024
  preprocessor: image_mean = image_std = [0.5,0.5,0.5]

HF tensor -> GGUF tensor (shape in numpy/torch order), dtype as the converter picks for f16:
  vision_tower.vision_model.embeddings.patch_embedding.{weight,bias}
      Linear(768, 3*16*16) -> converter views as (768,16,16,3) and permutes to (768,3,16,16)
      -> v.patch_embd.weight (768,3,16,16) F16 (forced F16 for f16 outtype), v.patch_embd.bias (768) F32
  vision_tower.vision_model.embeddings.position_embedding.weight (256,768) -> v.position_embd.weight F32
  vision_tower.vision_model.encoder.layers.N.{layer_norm1,layer_norm2} -> v.blk.N.{ln1,ln2}.{weight,bias} F32
  ...self_attn.{q,k,v}_proj -> v.blk.N.attn_{q,k,v}.weight (768,768) F16, .bias F32
  ...self_attn.out_proj     -> v.blk.N.attn_out.weight (768,768) F16, .bias F32
  ...mlp.fc1                -> v.blk.N.ffn_up.weight (3072,768) F16, .bias F32
  ...mlp.fc2                -> v.blk.N.ffn_down.weight (768,3072) F16, .bias F32
  vision_tower.vision_model.post_layernorm -> v.post_ln.{weight,bias} F32
  multi_modal_projector.layer_norm -> mm.input_norm.{weight,bias} (3072) F32
  multi_modal_projector.linear_1   -> mm.1.weight (2560,3072) F16, mm.1.bias F32
  multi_modal_projector.linear_2   -> mm.2.weight (1024,2560) F16, mm.2.bias F32

usage: make_lfm2vl_mmproj.py OUT.gguf [seed] [f16|bf16]
  f16 (default) is what `--outtype f16` gives and what llama.cpp usually ships for mmproj.
  bf16 mirrors `--outtype bf16`: matrices BF16, but v.patch_embd.weight is forced to F32
  (MmprojModel.tensor_force_quant: F16 only when ftype is F16, else F32).
"""
import sys
import numpy as np
import gguf

out_path = sys.argv[1]
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
kind = sys.argv[3] if len(sys.argv) > 3 else "f16"
assert kind in ("f16", "bf16"), kind
rng = np.random.default_rng(seed)

# ---- published LFM2-VL-450M config ----------------------------------------
v_hidden = 768
v_ff = 3072
v_heads = 12
v_layers_cfg = 12
patch = 16
num_patches = 256            # 16x16 learned position-embedding grid
v_eps = 1e-6
downsample = 2
proj_hidden = 2560
text_hidden = 1024
vision_feature_layer = -1
image_mean = [0.5, 0.5, 0.5]
image_std = [0.5, 0.5, 0.5]

# conversion/lfm2.py::LFM2VLModel
image_size_hack = 256        # "for dynamic resolution image_size is not specified, setting here for compatibility"
layers_to_drop = -(vision_feature_layer + 1)
v_layers = v_layers_cfg - layers_to_drop
assert v_layers == 12

F16 = gguf.GGMLQuantizationType.F16
BF16 = gguf.GGMLQuantizationType.BF16
F32 = gguf.GGMLQuantizationType.F32
MAT = F16 if kind == "f16" else BF16          # type of the 2-D weight matrices
PATCH = F16 if kind == "f16" else F32         # patch_embd forced type

w = gguf.GGUFWriter(out_path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.MMPROJ])  # "clip"
w.add_type(gguf.GGUFType.MMPROJ)
w.add_name("LFM2-VL-450M-random")
w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if kind == "f16" else gguf.LlamaFileType.MOSTLY_BF16)
w.add_quantization_version(gguf.GGML_QUANT_VERSION)

# MmprojModel.set_gguf_parameters
w.add_clip_has_vision_encoder(True)
w.add_vision_projection_dim(text_hidden)
w.add_vision_image_size(image_size_hack)
w.add_vision_patch_size(patch)
w.add_vision_embedding_length(v_hidden)
w.add_vision_feed_forward_length(v_ff)
w.add_vision_head_count(v_heads)
w.add_vision_image_mean(image_mean)
w.add_vision_image_std(image_std)
# LFM2VLModel.set_gguf_parameters
w.add_clip_projector_type(gguf.VisionProjectorType.LFM2)   # "lfm2"
w.add_vision_attention_layernorm_eps(v_eps)
w.add_vision_projector_scale_factor(downsample)
w.add_vision_use_gelu(True)
w.add_vision_block_count(v_layers)


def normal(shape, std):
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)


def add(name, arr, qtype):
    if qtype == F16:
        w.add_tensor(name, arr.astype(np.float16), raw_dtype=F16)
    elif qtype == BF16:
        # round-to-nearest-even, as gguf-py quants.quantize(BF16) does
        q = gguf.quants.quantize(arr.astype(np.float32), BF16)
        w.add_tensor(name, q, raw_dtype=BF16)
    else:
        w.add_tensor(name, arr.astype(np.float32), raw_dtype=F32)


def linear(prefix, n_out, n_in, bias=True):
    add(prefix + ".weight", normal((n_out, n_in), 1.0 / np.sqrt(n_in)), MAT)
    if bias:
        add(prefix + ".bias", normal((n_out,), 0.02), F32)


def norm(prefix, n):
    add(prefix + ".weight", 1.0 + normal((n,), 0.02), F32)
    add(prefix + ".bias", normal((n,), 0.02), F32)


# embeddings
fan_in = 3 * patch * patch
add("v.patch_embd.weight", normal((v_hidden, 3, patch, patch), 1.0 / np.sqrt(fan_in)), PATCH)
add("v.patch_embd.bias", normal((v_hidden,), 0.02), F32)
add("v.position_embd.weight", normal((num_patches, v_hidden), 0.02), F32)

for il in range(v_layers):
    p = f"v.blk.{il}"
    norm(p + ".ln1", v_hidden)
    linear(p + ".attn_q", v_hidden, v_hidden)
    linear(p + ".attn_k", v_hidden, v_hidden)
    linear(p + ".attn_v", v_hidden, v_hidden)
    linear(p + ".attn_out", v_hidden, v_hidden)
    norm(p + ".ln2", v_hidden)
    linear(p + ".ffn_up", v_ff, v_hidden)
    linear(p + ".ffn_down", v_hidden, v_ff)

norm("v.post_ln", v_hidden)

mm_in = v_hidden * downsample * downsample  # 3072
norm("mm.input_norm", mm_in)
linear("mm.1", proj_hidden, mm_in)
linear("mm.2", text_hidden, proj_hidden)

w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print("wrote", out_path)
