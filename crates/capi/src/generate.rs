//! Generation: one user turn ([`lfm2vl_generate`]) or a whole conversation
//! as JSON ([`lfm2vl_chat`]), their images and settings, and the result.

use std::ffi::{CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use runtime::constraint::Constraint;
use runtime::engine::{Output, Progress, Request};
use runtime::model::preprocess::{DecodeLimits, PixelLayout, RgbImage, from_pixels, load_image};
use runtime::model::prompt::{ChatMessage, ContentPart, MessageContent};
use runtime::sampling::SamplingConfig;
use runtime::session::Finish;
use runtime::tools::ToolSet;
use serde_json::{Value, json};

use crate::lfm2vl_status::*;
use crate::{
    Outcome, arg, chain, guard, lfm2vl_generate_default_params, lfm2vl_generate_params,
    lfm2vl_image, lfm2vl_model, lfm2vl_result, lfm2vl_status, lfm2vl_token_callback, text,
};

type Failure = (lfm2vl_status, String);

/// One image argument as RGB.
///
/// # Safety
/// `im`'s pointers are valid as its documentation says.
unsafe fn image(im: &lfm2vl_image, k: usize) -> Result<RgbImage, Failure> {
    let bad = |msg: String| (LFM2VL_ERROR_IMAGE, format!("images[{k}]: {msg}"));
    // SAFETY: `path` is NULL or NUL-terminated (the contract).
    if let Some(path) = unsafe { text(im.path, "path")? } {
        return load_image(path.as_ref(), &DecodeLimits::default()).map_err(|e| bad(chain(&e)));
    }
    if im.pixels.is_null() {
        return Err(bad("neither a path nor pixels".into()));
    }
    let layout = PixelLayout {
        width: im.width,
        height: im.height,
        channels: im.channels,
        stride: im.stride as usize,
    };
    let limits = DecodeLimits::default();
    let label = format!("images[{k}]");
    let refused = |e: runtime::model::preprocess::PreprocessError| (LFM2VL_ERROR_IMAGE, chain(&e));
    let need = layout.bytes_needed(&label, &limits).map_err(refused)?;
    // SAFETY: the caller's buffer holds `height` rows `stride` apart, each
    // at least `width · channels` bytes (the contract): `need` bytes.
    let pixels = unsafe { std::slice::from_raw_parts(im.pixels, need) };
    from_pixels(pixels, layout, &label, &limits).map_err(refused)
}

/// The `images` argument as a slice.
///
/// # Safety
/// `images` points to `n` values, or `n` is 0.
unsafe fn image_list<'a>(
    images: *const lfm2vl_image,
    n: usize,
) -> Result<&'a [lfm2vl_image], Failure> {
    match (images.is_null(), n) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(arg("images is NULL but n_images is not 0")),
        // SAFETY: `images` points to `n` values (the contract).
        (false, n) => Ok(unsafe { std::slice::from_raw_parts(images, n) }),
    }
}

/// A request's settings: sampling, the constraint, the tools.
///
/// # Safety
/// `p`'s strings are NULL or NUL-terminated.
unsafe fn settings(
    p: &lfm2vl_generate_params,
) -> Result<(SamplingConfig, Option<Constraint>, ToolSet), Failure> {
    let greedy = p.temperature <= 0.0;
    let sampling = SamplingConfig {
        greedy,
        temperature: if greedy { 1.0 } else { p.temperature },
        top_k: p.top_k as usize,
        top_p: p.top_p,
        min_p: p.min_p,
        repetition_penalty: p.repetition_penalty,
        seed: p.seed,
    };
    sampling.validate().map_err(arg)?;
    // SAFETY: NUL-terminated or NULL (the contract).
    let constraint = match unsafe { text(p.json_schema, "json_schema")? } {
        Some(schema) => Some(Constraint::JsonSchema {
            schema: serde_json::from_str(schema)
                .map_err(|e| arg(format!("json_schema is not JSON: {e}")))?,
            strict: true,
        }),
        None => None,
    };
    // SAFETY: as above.
    let choice = unsafe { text(p.tool_choice, "tool_choice")? }.map(|c| match c {
        "auto" | "none" | "required" => json!(c),
        name => json!({"type": "function", "function": {"name": name}}),
    });
    // SAFETY: as above.
    let tools = match unsafe { text(p.tools, "tools")? } {
        Some(list) => {
            let list: Vec<Value> = serde_json::from_str(list)
                .map_err(|e| arg(format!("tools is not a JSON list: {e}")))?;
            ToolSet::from_openai(&list, choice.as_ref()).map_err(|e| arg(chain(&e)))?
        }
        None if choice.is_some() => return Err(arg("tool_choice without tools")),
        None => ToolSet::default(),
    };
    Ok((sampling, constraint, tools))
}

/// A C string the caller frees with [`lfm2vl_result_free`] (NULs, which C
/// strings cannot hold, become spaces).
fn c_string(s: &str) -> *mut c_char {
    CString::new(s.replace('\0', " "))
        .unwrap_or_default()
        .into_raw()
}

/// Zeroes `*out` so that freeing it after a failure is harmless.
///
/// # Safety
/// `out` is NULL or writable.
unsafe fn clear(out: *mut lfm2vl_result) -> Outcome {
    if out.is_null() {
        return Err(arg("out is NULL"));
    }
    // SAFETY: `out` is writable (the contract).
    unsafe {
        *out = lfm2vl_result {
            text: std::ptr::null_mut(),
            ids: std::ptr::null_mut(),
            n_ids: 0,
            finish: 0,
            content: std::ptr::null_mut(),
            tool_calls: std::ptr::null_mut(),
            prompt_tokens: 0,
            reused_tokens: 0,
        }
    };
    Ok(())
}

/// Runs `messages` with `images` on `m` under `params`, streaming to
/// `callback`, and fills `*out`.
///
/// # Safety
/// As [`lfm2vl_generate`]'s, for `params`, `callback`, `user` and `out`
/// (checked writable).
unsafe fn run(
    m: &mut lfm2vl_model,
    messages: &[ChatMessage],
    images: &[RgbImage],
    params: *const lfm2vl_generate_params,
    callback: lfm2vl_token_callback,
    user: *mut c_void,
    out: *mut lfm2vl_result,
) -> Outcome {
    // SAFETY: NULL or valid (the contract).
    let p = unsafe { params.as_ref() }
        .copied()
        .unwrap_or_else(|| lfm2vl_generate_default_params());
    // SAFETY: the strings in `p` are NULL or NUL-terminated (the contract).
    let (sampling, constraint, tools) = unsafe { settings(&p)? };
    let mut req = Request::new(messages);
    req.images = images;
    req.max_new_tokens = p.max_new_tokens as usize;
    req.sampling = sampling;
    req.constraint = constraint;
    req.tools = tools;
    let on_text = |p: Progress<'_>| -> bool {
        let (Some(cb), Some(piece)) = (callback, p.text()) else {
            return true;
        };
        let Ok(c) = CString::new(piece) else {
            return true;
        };
        // SAFETY: the caller's callback takes a NUL-terminated string valid
        // during the call and its own `user` pointer.
        unsafe { cb(c.as_ptr(), user) }
    };
    let o: Output = m
        .engine
        .generate(&req, on_text)
        .map_err(|e| (LFM2VL_ERROR_GENERATE, chain(&e)))?;
    let g = &o.generation;
    let finish = match g.finish {
        Finish::Stop => 0,
        Finish::Length => 1,
        Finish::Context => 2,
        Finish::Cancelled => 3,
    };
    let tool_calls = req.tools.active().then(|| {
        let calls: Vec<Value> = o
            .tool_calls
            .iter()
            .map(|c| json!({"name": c.name, "arguments": c.arguments}))
            .collect();
        c_string(&Value::from(calls).to_string())
    });
    let ids = g.ids.clone().into_boxed_slice();
    let n_ids = ids.len();
    // SAFETY: `out` is writable (checked by `clear`).
    unsafe {
        *out = lfm2vl_result {
            text: c_string(&o.text),
            ids: Box::into_raw(ids).cast::<u32>(),
            n_ids,
            finish,
            content: c_string(&o.content),
            tool_calls: tool_calls.unwrap_or(std::ptr::null_mut()),
            prompt_tokens: g.prompt_tokens,
            reused_tokens: g.reused_tokens,
        }
    };
    Ok(())
}

/// Generates a reply to one user turn: `images` (`n_images` of them, shown
/// first) and `prompt`. Text pieces go to `callback` (may be NULL) as they
/// come; the whole reply goes to `*out` (free it with
/// [`lfm2vl_result_free`]). The model's cache keeps the turn, but a turn
/// does not extend the previous one: for a conversation use [`lfm2vl_chat`].
///
/// # Safety
/// `model` is NULL or a live handle used by this thread only; `prompt` is
/// NUL-terminated; `images` points to `n_images` valid `lfm2vl_image`s
/// (or is NULL with `n_images` 0); `params` is NULL (defaults) or valid;
/// `out` points to writable memory.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lfm2vl_generate(
    model: *mut lfm2vl_model,
    prompt: *const c_char,
    images: *const lfm2vl_image,
    n_images: usize,
    params: *const lfm2vl_generate_params,
    callback: lfm2vl_token_callback,
    user: *mut c_void,
    out: *mut lfm2vl_result,
) -> lfm2vl_status {
    guard(|| {
        // SAFETY: NULL or writable (the contract).
        unsafe { clear(out)? };
        // SAFETY: NULL or a live handle, used by this thread only (the contract).
        let m = unsafe { model.as_mut() }.ok_or_else(|| arg("model is NULL"))?;
        // SAFETY: NUL-terminated or NULL (the contract).
        let prompt = unsafe { text(prompt, "prompt")? }.ok_or_else(|| arg("prompt is NULL"))?;
        // SAFETY: `images` points to `n_images` values (the contract).
        let list = unsafe { image_list(images, n_images)? };
        let mut parts = Vec::new();
        let mut rgb = Vec::new();
        for (k, im) in list.iter().enumerate() {
            // SAFETY: each image's pointers are valid (the contract).
            rgb.push(unsafe { image(im, k)? });
            parts.push(ContentPart::image());
        }
        parts.push(ContentPart::text(prompt));
        let messages = [ChatMessage::parts("user", parts)];
        // SAFETY: the remaining arguments are as the contract says.
        unsafe { run(m, &messages, &rgb, params, callback, user, out) }
    })
}

/// Generates the next reply of a conversation: `messages` is a JSON list in
/// transformers' chat format (`[{"role": "system" | "user" | "assistant" |
/// "tool", "content": "…" or [{"type": "text", "text": "…"}, {"type":
/// "image"}, …]}, …]`). An image part naming a file (`{"type": "image",
/// "image": "cat.png"}`) loads it; every other image part takes the next of
/// `images`, in order. When `messages` extends the previous call's
/// messages and reply, the cached part is not computed again. Otherwise as
/// [`lfm2vl_generate`].
///
/// # Safety
/// As [`lfm2vl_generate`], with `messages` NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lfm2vl_chat(
    model: *mut lfm2vl_model,
    messages: *const c_char,
    images: *const lfm2vl_image,
    n_images: usize,
    params: *const lfm2vl_generate_params,
    callback: lfm2vl_token_callback,
    user: *mut c_void,
    out: *mut lfm2vl_result,
) -> lfm2vl_status {
    guard(|| {
        // SAFETY: NULL or writable (the contract).
        unsafe { clear(out)? };
        // SAFETY: NULL or a live handle, used by this thread only (the contract).
        let m = unsafe { model.as_mut() }.ok_or_else(|| arg("model is NULL"))?;
        // SAFETY: NUL-terminated or NULL (the contract).
        let json = unsafe { text(messages, "messages")? }.ok_or_else(|| arg("messages is NULL"))?;
        let messages: Vec<ChatMessage> = serde_json::from_str(json)
            .map_err(|e| arg(format!("messages is not a JSON message list: {e}")))?;
        // SAFETY: `images` points to `n_images` values (the contract).
        let list = unsafe { image_list(images, n_images)? };
        let mut given = list.iter().enumerate();
        let mut rgb = Vec::new();
        for part in messages.iter().flat_map(|m| match &m.content {
            MessageContent::Parts(p) => p.as_slice(),
            MessageContent::Text(_) => &[],
        }) {
            let ContentPart::Image { image: named } = part else {
                continue;
            };
            rgb.push(match (named, given.next()) {
                (Some(path), _) => load_image(path.as_ref(), &DecodeLimits::default())
                    .map_err(|e| (LFM2VL_ERROR_IMAGE, chain(&e)))?,
                // SAFETY: each image's pointers are valid (the contract).
                (None, Some((k, im))) => unsafe { image(im, k)? },
                (None, None) => {
                    return Err(arg(format!(
                        "image part #{} has no image: n_images is {n_images}",
                        rgb.len()
                    )));
                }
            });
        }
        let left = given.count();
        if left > 0 {
            return Err(arg(format!(
                "{left} of the {n_images} images have no image part to go to"
            )));
        }
        // SAFETY: the remaining arguments are as the contract says.
        unsafe { run(m, &messages, &rgb, params, callback, user, out) }
    })
}

/// Frees what a result holds and zeroes it (NULL is ignored; freeing twice
/// is harmless).
///
/// # Safety
/// `result` is NULL or points to a result filled by [`lfm2vl_generate`] or
/// [`lfm2vl_chat`] (or zeroed).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lfm2vl_result_free(result: *mut lfm2vl_result) {
    // SAFETY: NULL or a valid result (the contract).
    let Some(r) = (unsafe { result.as_mut() }) else {
        return;
    };
    let _ = catch_unwind(AssertUnwindSafe(|| {
        for s in [&mut r.text, &mut r.content, &mut r.tool_calls] {
            if !s.is_null() {
                // SAFETY: made by `CString::into_raw` in `c_string`.
                drop(unsafe { CString::from_raw(*s) });
            }
            *s = std::ptr::null_mut();
        }
        if !r.ids.is_null() {
            let ptr = std::ptr::slice_from_raw_parts_mut(r.ids, r.n_ids);
            // SAFETY: made by `Box::into_raw` of a boxed slice of `n_ids` ids.
            drop(unsafe { Box::from_raw(ptr) });
        }
        r.ids = std::ptr::null_mut();
        r.n_ids = 0;
    }));
}
