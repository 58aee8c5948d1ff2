//! The C ABI: `liblfm2vl` (shared and static) and `include/lfm2vl.h`
//! (written by `cargo xtask header` with cbindgen; CI fails when it is
//! stale). Opaque model handles, `*_default_params()` structs by value,
//! an explicit free for everything returned, UTF-8 strings, images as RGB
//! or RGBA bytes (width, height, stride) or a file path, a streaming
//! callback that can stop generation, status codes plus
//! `lfm2vl_last_error()` (a thread-local message). No panic crosses the
//! boundary: every entry point runs inside `catch_unwind`.
//!
//! A handle is a loaded model with one conversation: `lfm2vl_generate`
//! (one user turn) and `lfm2vl_chat` (a whole message list, JSON) reuse
//! what the previous call left in its cache. `lfm2vl_model_fork` gives
//! another handle on the same weights with a conversation of its own.
//!
//! Threads: a handle is used by one thread at a time (calls on it from two
//! threads at once are undefined); different handles, forks included, are
//! independent and may run at the same time. `lfm2vl_version`,
//! `lfm2vl_last_error` and the `*_default_params` functions may be called
//! from any thread.

#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use runtime::engine::{BackendChoice, Engine, EngineOptions};
use runtime::error::one_line as chain;

mod generate;
pub use generate::{lfm2vl_chat, lfm2vl_generate, lfm2vl_result_free};

/// What a call returns.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lfm2vl_status {
    LFM2VL_OK = 0,
    /// A NULL handle or pointer, a string that is not UTF-8, a bad setting.
    LFM2VL_ERROR_ARGUMENT = 1,
    /// The model could not be found or loaded.
    LFM2VL_ERROR_LOAD = 2,
    /// An image could not be read or used.
    LFM2VL_ERROR_IMAGE = 3,
    /// Generation failed (prompt too long, a bad constraint, the backend).
    LFM2VL_ERROR_GENERATE = 4,
    /// A bug inside the library (a caught panic); the handle may be unusable.
    LFM2VL_ERROR_INTERNAL = 5,
}

use lfm2vl_status::*;

/// A loaded model and its conversation cache (opaque).
pub struct lfm2vl_model {
    engine: Engine,
}

/// How a model is loaded ([`lfm2vl_model_default_params`]).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct lfm2vl_model_params {
    /// "cpu", "wgpu" or "auto"; NULL: "auto".
    pub backend: *const c_char,
    /// CPU threads; 0: all cores (or `LFM_THREADS`).
    pub threads: u32,
    /// The context in tokens; 0: 8192.
    pub max_len: u32,
    /// The mmproj GGUF of a GGUF model (for images); NULL: none.
    pub mmproj: *const c_char,
}

/// How to generate ([`lfm2vl_generate_default_params`]).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct lfm2vl_generate_params {
    pub max_new_tokens: u32,
    /// 0: greedy (argmax).
    pub temperature: f32,
    /// 0: off.
    pub top_k: u32,
    /// 1: off.
    pub top_p: f32,
    /// 0: off.
    pub min_p: f32,
    /// 1: off.
    pub repetition_penalty: f32,
    pub seed: u64,
    /// A JSON Schema the reply must match (UTF-8 JSON text); NULL: none.
    pub json_schema: *const c_char,
    /// Functions the model may call: OpenAI's `tools` list as JSON text
    /// (`[{"type": "function", "function": {"name", "description",
    /// "parameters"}}]`); NULL: none. The calls come back parsed in the
    /// result's `tool_calls`.
    pub tools: *const c_char,
    /// With `tools`: "auto" (NULL), "none", "required" (decoding is held
    /// to valid calls), or a function's name (exactly one call to it).
    pub tool_choice: *const c_char,
}

/// An image: a file (`path` set) or pixels (`path` NULL): `height` rows of
/// `width` pixels of `channels` bytes (1: gray, 3: RGB, 4: RGBA, composited
/// over white), each row `stride` bytes apart (0: `width · channels`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct lfm2vl_image {
    pub path: *const c_char,
    pub pixels: *const u8,
    pub width: u32,
    pub height: u32,
    pub stride: u32,
    pub channels: u32,
}

/// What [`lfm2vl_generate`] produced; free it with [`lfm2vl_result_free`].
#[repr(C)]
#[derive(Debug)]
pub struct lfm2vl_result {
    /// The reply (UTF-8, NUL-terminated).
    pub text: *mut c_char,
    /// The generated token ids (a final stop id included).
    pub ids: *mut u32,
    pub n_ids: usize,
    /// 0: an end token, 1: `max_new_tokens`, 2: the context is full,
    /// 3: the callback stopped it.
    pub finish: u32,
    /// The reply without its tool calls (with no `tools`: the text).
    pub content: *mut c_char,
    /// With `tools`: the calls as JSON text, `[{"name": …, "arguments":
    /// {…}}]` (`[]` for none); NULL without `tools`.
    pub tool_calls: *mut c_char,
    /// The prompt's tokens, and how many of them came from the cache.
    pub prompt_tokens: usize,
    pub reused_tokens: usize,
}

/// Receives each piece of generated text (UTF-8, NUL-terminated, valid
/// during the call) and `user`; returning false stops generation.
pub type lfm2vl_token_callback =
    Option<unsafe extern "C" fn(piece: *const c_char, user: *mut c_void) -> bool>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

type Outcome = Result<(), (lfm2vl_status, String)>;

/// Runs `f`, turning an error or a panic into a status and the thread's
/// last error.
fn guard(f: impl FnOnce() -> Outcome) -> lfm2vl_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            set_error("");
            LFM2VL_OK
        }
        Ok(Err((status, msg))) => {
            set_error(&msg);
            status
        }
        Err(_) => {
            set_error("internal error (a panic inside lfm2vl)");
            LFM2VL_ERROR_INTERNAL
        }
    }
}

fn arg(msg: impl Into<String>) -> (lfm2vl_status, String) {
    (LFM2VL_ERROR_ARGUMENT, msg.into())
}

/// A C string argument (NULL: `None`).
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string.
unsafe fn text<'a>(
    p: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, (lfm2vl_status, String)> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller passes a NUL-terminated string (the contract).
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map(Some)
        .map_err(|_| arg(format!("{what} is not UTF-8")))
}

/// The library's version, e.g. "0.1.0" (static; never freed).
#[unsafe(no_mangle)]
pub extern "C" fn lfm2vl_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => c"unknown",
        };
    VERSION.as_ptr()
}

/// The message of this thread's last failed call ("" after a success);
/// valid until this thread's next call into the library.
#[unsafe(no_mangle)]
pub extern "C" fn lfm2vl_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// Defaults: backend "auto", all cores, a context of 8192 tokens, no mmproj.
#[unsafe(no_mangle)]
pub extern "C" fn lfm2vl_model_default_params() -> lfm2vl_model_params {
    lfm2vl_model_params {
        backend: std::ptr::null(),
        threads: 0,
        max_len: 0,
        mmproj: std::ptr::null(),
    }
}

/// Defaults: greedy, 256 new tokens, no constraint, no tools.
#[unsafe(no_mangle)]
pub extern "C" fn lfm2vl_generate_default_params() -> lfm2vl_generate_params {
    lfm2vl_generate_params {
        max_new_tokens: 256,
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        repetition_penalty: 1.0,
        seed: 0,
        json_schema: std::ptr::null(),
        tools: std::ptr::null(),
        tool_choice: std::ptr::null(),
    }
}

/// Loads a model: a folder (Hugging Face layout), a GGUF file, or a hub id
/// (from the local cache, else downloaded). On success `*out` holds the
/// handle (free it with [`lfm2vl_model_free`]); on failure `*out` is NULL.
///
/// # Safety
/// `path` is a NUL-terminated string; `params` is NULL (defaults) or
/// points to a valid `lfm2vl_model_params`; `out` points to writable memory.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lfm2vl_model_load(
    path: *const c_char,
    params: *const lfm2vl_model_params,
    out: *mut *mut lfm2vl_model,
) -> lfm2vl_status {
    guard(|| {
        if out.is_null() {
            return Err(arg("out is NULL"));
        }
        // SAFETY: `out` is not NULL and points to writable memory (the contract).
        unsafe { *out = std::ptr::null_mut() };
        // SAFETY: `params` is NULL or valid (the contract).
        let p = unsafe { params.as_ref() }
            .copied()
            .unwrap_or_else(|| lfm2vl_model_default_params());
        // SAFETY: the strings are NUL-terminated or NULL (the contract).
        let path = unsafe { text(path, "path") }?.ok_or_else(|| arg("path is NULL"))?;
        // SAFETY: as above.
        let backend = unsafe { text(p.backend, "backend") }?;
        // SAFETY: as above.
        let mmproj = unsafe { text(p.mmproj, "mmproj") }?;
        let load = |e: runtime::RuntimeError| (LFM2VL_ERROR_LOAD, chain(&e));
        let choice = BackendChoice::parse(backend.unwrap_or("auto")).map_err(|e| arg(chain(&e)))?;
        let mut opts = EngineOptions::from_env(choice).map_err(|e| arg(chain(&e)))?;
        if p.threads > 0 {
            opts.cpu.threads = Some(p.threads as usize);
        }
        if p.max_len > 0 {
            opts.max_len = p.max_len as usize;
        }
        opts.mmproj = mmproj.map(Into::into);
        let engine = Engine::load(path, &opts).map_err(load)?;
        let handle = Box::into_raw(Box::new(lfm2vl_model { engine }));
        // SAFETY: checked above: `out` is writable.
        unsafe { *out = handle };
        Ok(())
    })
}

/// Another handle on `model`'s weights with a conversation of its own:
/// nothing is loaded or copied, only the new conversation's caches are
/// allocated. The two handles may then be used from two threads at once,
/// and freed in any order. On failure `*out` is NULL.
///
/// # Safety
/// `model` is NULL or a live handle that no other thread uses during the
/// call; `out` points to writable memory.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lfm2vl_model_fork(
    model: *const lfm2vl_model,
    out: *mut *mut lfm2vl_model,
) -> lfm2vl_status {
    guard(|| {
        if out.is_null() {
            return Err(arg("out is NULL"));
        }
        // SAFETY: `out` is not NULL and points to writable memory (the contract).
        unsafe { *out = std::ptr::null_mut() };
        // SAFETY: NULL or a live handle no other thread is using (the contract).
        let m = unsafe { model.as_ref() }.ok_or_else(|| arg("model is NULL"))?;
        let engine = m
            .engine
            .fork()
            .map_err(|e| (LFM2VL_ERROR_LOAD, chain(&e)))?;
        let handle = Box::into_raw(Box::new(lfm2vl_model { engine }));
        // SAFETY: checked above: `out` is writable.
        unsafe { *out = handle };
        Ok(())
    })
}

/// Frees a model (NULL is ignored).
///
/// # Safety
/// `model` is NULL or a handle from [`lfm2vl_model_load`] not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lfm2vl_model_free(model: *mut lfm2vl_model) {
    if !model.is_null() {
        // SAFETY: a live handle from `Box::into_raw` (the contract).
        let b = unsafe { Box::from_raw(model) };
        let _ = catch_unwind(AssertUnwindSafe(move || drop(b)));
    }
}

/// Forgets the model's conversation cache (the next call prefills anew).
///
/// # Safety
/// `model` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lfm2vl_reset(model: *mut lfm2vl_model) -> lfm2vl_status {
    guard(|| {
        // SAFETY: NULL or a live handle, used by this thread only (the contract).
        let m = unsafe { model.as_mut() }.ok_or_else(|| arg("model is NULL"))?;
        m.engine
            .reset()
            .map_err(|e| (LFM2VL_ERROR_GENERATE, chain(&e)))
    })
}
