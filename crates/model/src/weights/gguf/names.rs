//! GGUF tensor names (llama.cpp's `llama-arch.cpp` for `lfm2`, `clip-impl.h`
//! for the mmproj) and the Hugging Face names the model loads by, each pair
//! written once here, with the layout change the converter made, if any
//! (`convert_hf_to_gguf.py`: `LFM2Model.modify_tensors` squeezes the conv
//! weight, `LFM2VLModel.modify_tensors` reshapes and permutes the patch
//! embedding).

use super::super::names;

/// How a GGUF tensor's layout differs from the Hugging Face one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Same element order and shape.
    Same,
    /// The depthwise conv weight: GGUF `[d, l]`, Hugging Face `[d, 1, l]`
    /// (same bytes).
    ConvSqueezed,
    /// The patch embedding: GGUF `[D, 3, p, p]` (the converter's
    /// `view(D, p, p, 3).permute(0, 3, 1, 2)`), Hugging Face's Linear
    /// `[D, p·p·3]` with inputs in (py, px, c) order.
    PatchConv,
}

/// Per-layer text tensors: (GGUF name after `blk.N.`, Hugging Face name after
/// `layers.N.`, layout).
pub const TEXT_LAYER: &[(&str, &str, Layout)] = &[
    ("attn_norm.weight", "operator_norm.weight", Layout::Same),
    ("ffn_norm.weight", "ffn_norm.weight", Layout::Same),
    ("attn_q.weight", "self_attn.q_proj.weight", Layout::Same),
    ("attn_k.weight", "self_attn.k_proj.weight", Layout::Same),
    ("attn_v.weight", "self_attn.v_proj.weight", Layout::Same),
    (
        "attn_output.weight",
        "self_attn.out_proj.weight",
        Layout::Same,
    ),
    (
        "attn_q_norm.weight",
        "self_attn.q_layernorm.weight",
        Layout::Same,
    ),
    (
        "attn_k_norm.weight",
        "self_attn.k_layernorm.weight",
        Layout::Same,
    ),
    (
        "shortconv.in_proj.weight",
        "conv.in_proj.weight",
        Layout::Same,
    ),
    (
        "shortconv.out_proj.weight",
        "conv.out_proj.weight",
        Layout::Same,
    ),
    (
        "shortconv.conv.weight",
        "conv.conv.weight",
        Layout::ConvSqueezed,
    ),
    ("ffn_gate.weight", "feed_forward.w1.weight", Layout::Same),
    ("ffn_up.weight", "feed_forward.w3.weight", Layout::Same),
    ("ffn_down.weight", "feed_forward.w2.weight", Layout::Same),
];

/// Whole-model text tensors: (GGUF name, Hugging Face name under the text
/// prefix, or `None` for [`names::LM_HEAD`]).
pub const TEXT_GLOBAL: &[(&str, Option<&str>)] = &[
    ("token_embd.weight", Some("embed_tokens.weight")),
    // LFM2's final norm: llama.cpp's LLM_TENSOR_OUTPUT_NORM_LFM2.
    ("token_embd_norm.weight", Some("embedding_norm.weight")),
    ("output.weight", None),
];

/// Per-layer vision tensors: (GGUF name after `v.blk.N.`, Hugging Face name
/// after `encoder.layers.N.`), both followed by `.weight` or `.bias`.
pub const VISION_LAYER: &[(&str, &str)] = &[
    ("ln1", "layer_norm1"),
    ("ln2", "layer_norm2"),
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_out", "self_attn.out_proj"),
    ("ffn_up", "mlp.fc1"),
    ("ffn_down", "mlp.fc2"),
];

/// Whole-tower vision and projector tensors: (GGUF name, full Hugging Face
/// name with `{V}` for the vision prefix and `{P}` for the projector's),
/// both followed by `.weight` or `.bias`.
pub const VISION_GLOBAL: &[(&str, &str)] = &[
    ("v.patch_embd", "{V}.embeddings.patch_embedding"),
    ("v.position_embd", "{V}.embeddings.position_embedding"),
    ("v.post_ln", "{V}.post_layernorm"),
    ("mm.input_norm", "{P}.layer_norm"),
    ("mm.1", "{P}.linear_1"),
    ("mm.2", "{P}.linear_2"),
];

/// `blk.N.rest` → `(N, rest)`.
fn split_block<'a>(name: &'a str, prefix: &str) -> Option<(usize, &'a str)> {
    let rest = name.strip_prefix(prefix)?;
    let (n, rest) = rest.split_once('.')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((n.parse().ok()?, rest))
}

/// The Hugging Face name of a text GGUF tensor, the text model living under
/// `text_prefix`; `None` for names the model does not know.
pub fn text_to_hf(gguf: &str, text_prefix: &str) -> Option<(String, Layout)> {
    if let Some(&(_, hf)) = TEXT_GLOBAL.iter().find(|(g, _)| *g == gguf) {
        return Some(match hf {
            Some(hf) => (format!("{text_prefix}.{hf}"), Layout::Same),
            None => (names::LM_HEAD.to_string(), Layout::Same),
        });
    }
    let (n, rest) = split_block(gguf, "blk.")?;
    let &(_, hf, layout) = TEXT_LAYER.iter().find(|(g, _, _)| *g == rest)?;
    Some((format!("{text_prefix}.layers.{n}.{hf}"), layout))
}

/// The Hugging Face name of an mmproj GGUF tensor (published layout,
/// `model.vision_tower.vision_model.*`); `None` for names the model does
/// not know.
pub fn mmproj_to_hf(gguf: &str) -> Option<(String, Layout)> {
    let (stem, leaf) = gguf.rsplit_once('.')?;
    if leaf != "weight" && leaf != "bias" {
        return None;
    }
    if let Some(&(_, hf)) = VISION_GLOBAL.iter().find(|(g, _)| *g == stem) {
        let layout = if gguf == "v.patch_embd.weight" {
            Layout::PatchConv
        } else {
            Layout::Same
        };
        let hf = hf
            .replace("{V}", names::VISION_PUBLISHED)
            .replace("{P}", names::PROJECTOR);
        return Some((format!("{hf}.{leaf}"), layout));
    }
    let (n, rest) = split_block(stem, "v.blk.")?;
    let &(_, hf) = VISION_LAYER.iter().find(|(g, _)| *g == rest)?;
    Some((
        format!("{}.encoder.layers.{n}.{hf}.{leaf}", names::VISION_PUBLISHED),
        Layout::Same,
    ))
}

/// The GGUF name of a Hugging Face tensor (the inverse of [`text_to_hf`] and
/// [`mmproj_to_hf`]), for writers of test files: `(name, is_mmproj, layout)`.
pub fn hf_to_gguf(hf: &str, text_prefix: &str) -> Option<(String, bool, Layout)> {
    if hf == names::LM_HEAD {
        return Some(("output.weight".into(), false, Layout::Same));
    }
    if let Some(rest) = hf
        .strip_prefix(text_prefix)
        .and_then(|r| r.strip_prefix('.'))
    {
        if let Some(&(g, _)) = TEXT_GLOBAL.iter().find(|(_, h)| *h == Some(rest)) {
            return Some((g.into(), false, Layout::Same));
        }
        let (n, rest) = split_block(rest, "layers.")?;
        let &(g, _, layout) = TEXT_LAYER.iter().find(|(_, h, _)| *h == rest)?;
        return Some((format!("blk.{n}.{g}"), false, layout));
    }
    let (stem, leaf) = hf.rsplit_once('.')?;
    for &(g, h) in VISION_GLOBAL {
        let h = h
            .replace("{V}", names::VISION_PUBLISHED)
            .replace("{P}", names::PROJECTOR);
        if h == stem {
            let name = format!("{g}.{leaf}");
            let layout = mmproj_to_hf(&name)?.1;
            return Some((name, true, layout));
        }
    }
    let enc = format!("{}.encoder.layers.", names::VISION_PUBLISHED);
    let (n, rest) = split_block(stem, &enc)?;
    let &(g, _) = VISION_LAYER.iter().find(|(_, h)| *h == rest)?;
    Some((format!("v.blk.{n}.{g}.{leaf}"), true, Layout::Same))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_names_map_both_ways() {
        let t = names::VL_TEXT;
        let cases = [
            (
                "token_embd.weight",
                "model.language_model.embed_tokens.weight",
            ),
            (
                "token_embd_norm.weight",
                "model.language_model.embedding_norm.weight",
            ),
            ("output.weight", "lm_head.weight"),
            (
                "blk.3.attn_output.weight",
                "model.language_model.layers.3.self_attn.out_proj.weight",
            ),
            (
                "blk.12.ffn_gate.weight",
                "model.language_model.layers.12.feed_forward.w1.weight",
            ),
            (
                "blk.0.shortconv.conv.weight",
                "model.language_model.layers.0.conv.conv.weight",
            ),
        ];
        for (g, h) in cases {
            let (got, _) = text_to_hf(g, t).unwrap();
            assert_eq!(got, h);
            let (back, mm, _) = hf_to_gguf(h, t).unwrap();
            assert_eq!((back.as_str(), mm), (g, false));
        }
        assert_eq!(
            text_to_hf("blk.0.shortconv.conv.weight", t).unwrap().1,
            Layout::ConvSqueezed
        );
        for bad in [
            "blk.x.ffn_up.weight",
            "blk..ffn_up.weight",
            "blk.1.nope.weight",
            "foo",
        ] {
            assert!(text_to_hf(bad, t).is_none(), "{bad}");
        }
    }

    #[test]
    fn mmproj_names_map_both_ways() {
        let v = names::VISION_PUBLISHED;
        let cases = [
            (
                "v.patch_embd.weight",
                format!("{v}.embeddings.patch_embedding.weight"),
            ),
            (
                "v.blk.1.ffn_down.bias",
                format!("{v}.encoder.layers.1.mlp.fc2.bias"),
            ),
            (
                "v.blk.0.attn_out.weight",
                format!("{v}.encoder.layers.0.self_attn.out_proj.weight"),
            ),
            ("v.post_ln.bias", format!("{v}.post_layernorm.bias")),
            (
                "mm.input_norm.weight",
                "model.multi_modal_projector.layer_norm.weight".into(),
            ),
            (
                "mm.2.bias",
                "model.multi_modal_projector.linear_2.bias".into(),
            ),
        ];
        for (g, h) in cases {
            assert_eq!(mmproj_to_hf(g).unwrap().0, h);
            let (back, mm, _) = hf_to_gguf(&h, names::VL_TEXT).unwrap();
            assert_eq!((back.as_str(), mm), (g, true));
        }
        assert_eq!(
            mmproj_to_hf("v.patch_embd.weight").unwrap().1,
            Layout::PatchConv
        );
        assert_eq!(mmproj_to_hf("v.patch_embd.bias").unwrap().1, Layout::Same);
        assert!(mmproj_to_hf("v.blk.0.ffn_gate.weight").is_none());
    }
}
