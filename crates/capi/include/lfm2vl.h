/* lfm2vl: the C API of lfm2vl-rs. Written by `cargo xtask header` from
 * crates/capi/src/; do not edit. */

#ifndef LFM2VL_H
#define LFM2VL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * What a call returns.
 */
typedef enum lfm2vl_status {
  LFM2VL_OK = 0,
  /**
   * A NULL handle or pointer, a string that is not UTF-8, a bad setting.
   */
  LFM2VL_ERROR_ARGUMENT = 1,
  /**
   * The model could not be found or loaded.
   */
  LFM2VL_ERROR_LOAD = 2,
  /**
   * An image could not be read or used.
   */
  LFM2VL_ERROR_IMAGE = 3,
  /**
   * Generation failed (prompt too long, a bad constraint, the backend).
   */
  LFM2VL_ERROR_GENERATE = 4,
  /**
   * A bug inside the library (a caught panic); the handle may be unusable.
   */
  LFM2VL_ERROR_INTERNAL = 5,
} lfm2vl_status;

/**
 * A loaded model and its conversation cache (opaque).
 */
typedef struct lfm2vl_model lfm2vl_model;

/**
 * How a model is loaded ([`lfm2vl_model_default_params`]).
 */
typedef struct lfm2vl_model_params {
  /**
   * "cpu", "wgpu" or "auto"; NULL: "auto".
   */
  const char *backend;
  /**
   * CPU threads; 0: all cores (or `LFM_THREADS`).
   */
  uint32_t threads;
  /**
   * The context in tokens; 0: 8192.
   */
  uint32_t max_len;
  /**
   * The mmproj GGUF of a GGUF model (for images); NULL: none.
   */
  const char *mmproj;
} lfm2vl_model_params;

/**
 * How to generate ([`lfm2vl_generate_default_params`]).
 */
typedef struct lfm2vl_generate_params {
  uint32_t max_new_tokens;
  /**
   * 0: greedy (argmax).
   */
  float temperature;
  /**
   * 0: off.
   */
  uint32_t top_k;
  /**
   * 1: off.
   */
  float top_p;
  /**
   * 0: off.
   */
  float min_p;
  /**
   * 1: off.
   */
  float repetition_penalty;
  uint64_t seed;
  /**
   * A JSON Schema the reply must match (UTF-8 JSON text); NULL: none.
   */
  const char *json_schema;
  /**
   * Functions the model may call: OpenAI's `tools` list as JSON text
   * (`[{"type": "function", "function": {"name", "description",
   * "parameters"}}]`); NULL: none. The calls come back parsed in the
   * result's `tool_calls`.
   */
  const char *tools;
  /**
   * With `tools`: "auto" (NULL), "none", "required" (decoding is held
   * to valid calls), or a function's name (exactly one call to it).
   */
  const char *tool_choice;
} lfm2vl_generate_params;

/**
 * An image: a file (`path` set) or pixels (`path` NULL): `height` rows of
 * `width` pixels of `channels` bytes (1: gray, 3: RGB, 4: RGBA, composited
 * over white), each row `stride` bytes apart (0: `width · channels`).
 */
typedef struct lfm2vl_image {
  const char *path;
  const uint8_t *pixels;
  uint32_t width;
  uint32_t height;
  uint32_t stride;
  uint32_t channels;
} lfm2vl_image;

/**
 * Receives each piece of generated text (UTF-8, NUL-terminated, valid
 * during the call) and `user`; returning false stops generation.
 */
typedef bool (*lfm2vl_token_callback)(const char *piece, void *user);

/**
 * What [`lfm2vl_generate`] produced; free it with [`lfm2vl_result_free`].
 */
typedef struct lfm2vl_result {
  /**
   * The reply (UTF-8, NUL-terminated).
   */
  char *text;
  /**
   * The generated token ids (a final stop id included).
   */
  uint32_t *ids;
  size_t n_ids;
  /**
   * 0: an end token, 1: `max_new_tokens`, 2: the context is full,
   * 3: the callback stopped it.
   */
  uint32_t finish;
  /**
   * The reply without its tool calls (with no `tools`: the text).
   */
  char *content;
  /**
   * With `tools`: the calls as JSON text, `[{"name": …, "arguments":
   * {…}}]` (`[]` for none); NULL without `tools`.
   */
  char *tool_calls;
  /**
   * The prompt's tokens, and how many of them came from the cache.
   */
  size_t prompt_tokens;
  size_t reused_tokens;
} lfm2vl_result;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * The library's version, e.g. "0.1.0" (static; never freed).
 */
const char *lfm2vl_version(void);

/**
 * The message of this thread's last failed call ("" after a success);
 * valid until this thread's next call into the library.
 */
const char *lfm2vl_last_error(void);

/**
 * Defaults: backend "auto", all cores, a context of 8192 tokens, no mmproj.
 */
struct lfm2vl_model_params lfm2vl_model_default_params(void);

/**
 * Defaults: greedy, 256 new tokens, no constraint, no tools.
 */
struct lfm2vl_generate_params lfm2vl_generate_default_params(void);

/**
 * Loads a model: a folder (Hugging Face layout), a GGUF file, or a hub id
 * (from the local cache, else downloaded). On success `*out` holds the
 * handle (free it with [`lfm2vl_model_free`]); on failure `*out` is NULL.
 *
 * # Safety
 * `path` is a NUL-terminated string; `params` is NULL (defaults) or
 * points to a valid `lfm2vl_model_params`; `out` points to writable memory.
 */
enum lfm2vl_status lfm2vl_model_load(const char *path,
                                     const struct lfm2vl_model_params *params,
                                     struct lfm2vl_model **out);

/**
 * Another handle on `model`'s weights with a conversation of its own:
 * nothing is loaded or copied, only the new conversation's caches are
 * allocated. The two handles may then be used from two threads at once,
 * and freed in any order. On failure `*out` is NULL.
 *
 * # Safety
 * `model` is NULL or a live handle that no other thread uses during the
 * call; `out` points to writable memory.
 */
enum lfm2vl_status lfm2vl_model_fork(const struct lfm2vl_model *model, struct lfm2vl_model **out);

/**
 * Frees a model (NULL is ignored).
 *
 * # Safety
 * `model` is NULL or a handle from [`lfm2vl_model_load`] not yet freed.
 */
void lfm2vl_model_free(struct lfm2vl_model *model);

/**
 * Forgets the model's conversation cache (the next call prefills anew).
 *
 * # Safety
 * `model` is NULL or a live handle.
 */
enum lfm2vl_status lfm2vl_reset(struct lfm2vl_model *model);

/**
 * Generates a reply to one user turn: `images` (`n_images` of them, shown
 * first) and `prompt`. Text pieces go to `callback` (may be NULL) as they
 * come; the whole reply goes to `*out` (free it with
 * [`lfm2vl_result_free`]). The model's cache keeps the turn, but a turn
 * does not extend the previous one: for a conversation use [`lfm2vl_chat`].
 *
 * # Safety
 * `model` is NULL or a live handle used by this thread only; `prompt` is
 * NUL-terminated; `images` points to `n_images` valid `lfm2vl_image`s
 * (or is NULL with `n_images` 0); `params` is NULL (defaults) or valid;
 * `out` points to writable memory.
 */
enum lfm2vl_status lfm2vl_generate(struct lfm2vl_model *model,
                                   const char *prompt,
                                   const struct lfm2vl_image *images,
                                   size_t n_images,
                                   const struct lfm2vl_generate_params *params,
                                   lfm2vl_token_callback callback,
                                   void *user,
                                   struct lfm2vl_result *out);

/**
 * Generates the next reply of a conversation: `messages` is a JSON list in
 * transformers' chat format (`[{"role": "system" | "user" | "assistant" |
 * "tool", "content": "…" or [{"type": "text", "text": "…"}, {"type":
 * "image"}, …]}, …]`). An image part naming a file (`{"type": "image",
 * "image": "cat.png"}`) loads it; every other image part takes the next of
 * `images`, in order. When `messages` extends the previous call's
 * messages and reply, the cached part is not computed again. Otherwise as
 * [`lfm2vl_generate`].
 *
 * # Safety
 * As [`lfm2vl_generate`], with `messages` NUL-terminated.
 */
enum lfm2vl_status lfm2vl_chat(struct lfm2vl_model *model,
                               const char *messages,
                               const struct lfm2vl_image *images,
                               size_t n_images,
                               const struct lfm2vl_generate_params *params,
                               lfm2vl_token_callback callback,
                               void *user,
                               struct lfm2vl_result *out);

/**
 * Frees what a result holds and zeroes it (NULL is ignored; freeing twice
 * is harmless).
 *
 * # Safety
 * `result` is NULL or points to a result filled by [`lfm2vl_generate`] or
 * [`lfm2vl_chat`] (or zeroed).
 */
void lfm2vl_result_free(struct lfm2vl_result *result);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* LFM2VL_H */
