"""LFM2-VL vision-language models on lfm2vl-rs, a Rust engine with its own
SIMD CPU kernels and WGSL shaders (wgpu): no ML framework underneath.

    import lfm2vl

    model = lfm2vl.Model("LiquidAI/LFM2-VL-450M")  # a folder, a .gguf, or a hub id
    messages = [{"role": "user", "content": [
        {"type": "image", "image": "cat.png"},
        {"type": "text", "text": "What is in this image?"},
    ]}]
    print(model.chat(messages).text)
    for piece in model.chat(messages, stream=True):
        print(piece, end="", flush=True)

Messages are transformers' chat format: a role and content that is a string
or a list of ``{"type": "text", "text": ...}`` and ``{"type": "image"}``
parts. An image part's ``"image"`` is a path, an encoded file's bytes, a PIL
image or a ``uint8`` array (``HxW``, ``HxWx3`` or ``HxWx4``); image parts
without one take the ``images=`` arguments in order.

Decoding is greedy unless a sampling setting is given (``temperature``,
``top_k``, ``top_p``, ``min_p``; ``temperature=0`` is greedy) or a
``preset`` (``"model-card"``). ``json_schema``, ``json_object``, ``regex``
or ``grammar`` (Lark) constrain the reply; ``tools`` (OpenAI's format)
lists functions the model may call, parsed into ``Completion.tool_calls``.

Everything lfm2vl refuses raises :class:`Error` with the cause in its
message. One model runs one generation at a time (a second call waits);
:meth:`Model.fork` gives another conversation on the same weights.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Sequence, Union

from . import _lfm2vl
from ._lfm2vl import Error, __version__, system_info

__all__ = [
    "Completion",
    "Error",
    "Model",
    "Stream",
    "ToolCall",
    "__version__",
    "system_info",
]


@dataclass(frozen=True)
class ToolCall:
    """A function call the reply makes: the name and the arguments (a dict)."""

    name: str
    arguments: dict


@dataclass(frozen=True)
class Completion:
    """A finished reply."""

    #: The whole reply (call lists included when tools were given).
    text: str
    #: The reply's text without its tool calls.
    content: str
    tool_calls: List[ToolCall]
    #: ``stop`` (end of turn or a stop string), ``length`` (max_tokens),
    #: ``context`` (the context is full) or ``cancelled``.
    finish_reason: str
    #: The generated token ids (the final stop id included).
    token_ids: List[int]
    prompt_ids: List[int]
    prompt_tokens: int
    #: Prompt tokens taken from the conversation cache, not computed again.
    reused_tokens: int
    image_seconds: float
    prefill_seconds: float
    decode_seconds: float
    prefill_tok_s: float
    decode_tok_s: float


def _completion(text: str) -> Completion:
    r = json.loads(text)
    return Completion(
        text=r["text"],
        content=r["content"],
        tool_calls=[ToolCall(c["name"], c["arguments"]) for c in r["tool_calls"]],
        finish_reason=r["finish"],
        token_ids=r["ids"],
        prompt_ids=r["prompt_ids"],
        prompt_tokens=r["prompt_tokens"],
        reused_tokens=r["reused_tokens"],
        image_seconds=r["image_seconds"],
        prefill_seconds=r["prefill_seconds"],
        decode_seconds=r["decode_seconds"],
        prefill_tok_s=r["prefill_tok_s"],
        decode_tok_s=r["decode_tok_s"],
    )


class Stream:
    """The reply's text pieces as they come. Once it is exhausted,
    :attr:`completion` holds the whole :class:`Completion`. ``close()``, or
    leaving a ``with`` block, stops the generation at the next token."""

    def __init__(self, native: Any):
        self._native = native
        #: The finished reply, once the stream is read to its end.
        self.completion: Optional[Completion] = None

    def __iter__(self) -> "Stream":
        return self

    def __next__(self) -> str:
        try:
            return next(self._native)
        except StopIteration:
            if self.completion is None:
                r = self._native.result()
                if r is not None:
                    self.completion = _completion(r)
            raise

    def close(self) -> None:
        self._native.close()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


Image = Any
"""A path (``str`` or ``os.PathLike``), an encoded file (``bytes``), a PIL
image, or a ``uint8`` array of shape ``HxW``, ``HxWx3`` or ``HxWx4``."""


def _image(x: Image, k: int) -> tuple:
    if isinstance(x, (str, os.PathLike)):
        return ("path", os.fspath(x), None, 0, 0, 0)
    if isinstance(x, (bytes, bytearray, memoryview)):
        return ("encoded", None, bytes(x), 0, 0, 0)
    # A PIL image: its own pixels, in a mode we read as is.
    if hasattr(x, "mode") and hasattr(x, "size") and hasattr(x, "tobytes"):
        if x.mode not in ("L", "RGB", "RGBA"):
            alpha = "A" in x.mode or "transparency" in getattr(x, "info", {})
            x = x.convert("RGBA" if alpha else "RGB")
        width, height = x.size
        channels = {"L": 1, "RGB": 3, "RGBA": 4}[x.mode]
        return ("pixels", None, x.tobytes(), width, height, channels)
    # An array (numpy or anything with the array interface).
    if hasattr(x, "__array_interface__") and hasattr(x, "shape"):
        dtype = str(getattr(x, "dtype", ""))
        if dtype != "uint8":
            raise Error(f"image #{k}: an array of {dtype}, not uint8")
        shape = tuple(x.shape)
        if len(shape) == 2:
            (height, width), channels = shape, 1
        elif len(shape) == 3 and shape[2] in (1, 3, 4):
            height, width, channels = shape
        else:
            raise Error(f"image #{k}: an array of shape {shape} (HxW, HxWx3 or HxWx4)")
        return ("pixels", None, x.tobytes(), width, height, channels)
    raise TypeError(
        f"image #{k}: {type(x).__name__} is not a path, bytes, a PIL image or an array"
    )


def _prepare(
    messages: Sequence[dict], images: Optional[Sequence[Image]]
) -> "tuple[str, list]":
    """The messages as JSON with every image part bare, and the images in
    the order of those parts."""
    given = list(images or [])
    out_images: list = []
    out_messages = []
    for m in messages:
        if not isinstance(m, dict):
            raise TypeError(f"a message is a dict, not {type(m).__name__}")
        content = m.get("content")
        if isinstance(content, list):
            parts = []
            for p in content:
                if isinstance(p, dict) and p.get("type") == "image":
                    k = len(out_images)
                    if p.get("image") is not None:
                        source = p["image"]
                    elif given:
                        source = given.pop(0)
                    else:
                        raise Error(f"image part #{k} has no image and images= has no more")
                    out_images.append(_image(source, k))
                    p = {"type": "image"}
                parts.append(p)
            m = {**m, "content": parts}
        out_messages.append(m)
    if given:
        raise Error(
            f"{len(given)} image(s) in images= but no image part left to take them"
        )
    return json.dumps(out_messages), out_images


class Model:
    """A loaded model and one conversation's cache: a call whose prompt
    starts with the previous call's prompt and reply reuses them.

    ``model``: a checkpoint folder, a ``.gguf`` file (``mmproj=`` adds its
    vision tower), or a hub id (``org/name``, or ``org/name-GGUF:Q4_0``),
    from the local cache or downloaded. ``backend``: ``"cpu"``, ``"wgpu"``
    or ``"auto"`` (a hardware GPU when there is one). ``weights``: how the
    CPU stores matmul weights (``native``, ``int8``, ``bf16dot``, ``q8_0``,
    ``q4_0``, ...). ``max_len``: the context in tokens (default 8192).
    """

    def __init__(
        self,
        model: Union[str, os.PathLike],
        *,
        backend: str = "auto",
        threads: Optional[int] = None,
        max_len: Optional[int] = None,
        weights: Optional[str] = None,
        mmproj: Optional[Union[str, os.PathLike]] = None,
    ):
        self._native = _lfm2vl.Model(
            os.fspath(model),
            backend=backend,
            threads=threads,
            max_len=max_len,
            weights=weights,
            mmproj=None if mmproj is None else os.fspath(mmproj),
        )

    @classmethod
    def _wrap(cls, native: Any) -> "Model":
        m = cls.__new__(cls)
        m._native = native
        return m

    @property
    def backend(self) -> str:
        """The backend in words (CPU tier and threads, or the GPU)."""
        return self._native.backend

    @property
    def has_vision(self) -> bool:
        return self._native.has_vision

    @property
    def max_len(self) -> int:
        return self._native.max_len

    def fork(self) -> "Model":
        """Another conversation on the same weights (nothing is loaded again)."""
        return Model._wrap(self._native.fork())

    def reset(self) -> None:
        """Forgets the conversation cache."""
        self._native.reset()

    def chat(
        self,
        messages: Sequence[dict],
        *,
        images: Optional[Sequence[Image]] = None,
        stream: bool = False,
        max_tokens: int = 256,
        temperature: Optional[float] = None,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        min_p: Optional[float] = None,
        repetition_penalty: Optional[float] = None,
        seed: int = 0,
        preset: Optional[str] = None,
        stop: Optional[Sequence[str]] = None,
        json_schema: Optional[dict] = None,
        strict: bool = True,
        json_object: bool = False,
        regex: Optional[str] = None,
        grammar: Optional[str] = None,
        tools: Optional[Sequence[dict]] = None,
        tool_choice: Union[str, dict, None] = None,
        parallel_tool_calls: bool = True,
    ) -> Union[Completion, Stream]:
        """Replies to ``messages``: a :class:`Completion`, or with
        ``stream=True`` a :class:`Stream` of text pieces."""
        if isinstance(stop, str):
            stop = [stop]
        options = json.dumps(
            {
                "max_tokens": max_tokens,
                "preset": preset,
                "temperature": temperature,
                "top_k": top_k,
                "top_p": top_p,
                "min_p": min_p,
                "repetition_penalty": repetition_penalty,
                "seed": seed,
                "stop": list(stop or []),
                "json_schema": json_schema,
                "strict": strict,
                "json_object": json_object,
                "regex": regex,
                "grammar": grammar,
                "tools": None if tools is None else list(tools),
                "tool_choice": tool_choice,
                "parallel_tool_calls": parallel_tool_calls,
            }
        )
        text, imgs = _prepare(messages, images)
        if stream:
            return Stream(self._native.stream(text, imgs, options))
        return _completion(self._native.generate(text, imgs, options))

    def generate(
        self,
        prompt: str,
        *,
        images: Optional[Sequence[Image]] = None,
        system: Optional[str] = None,
        **options: Any,
    ) -> Union[Completion, Stream]:
        """One user turn: ``images`` (shown first) and ``prompt``, after an
        optional ``system`` message. Takes :meth:`chat`'s options."""
        images = list(images or [])
        parts = [{"type": "image"} for _ in images] + [{"type": "text", "text": prompt}]
        messages = [{"role": "user", "content": parts}]
        if system is not None:
            messages.insert(0, {"role": "system", "content": system})
        return self.chat(messages, images=images, **options)

    def prompt_ids(
        self,
        messages: Sequence[dict],
        *,
        images: Optional[Sequence[Image]] = None,
        tools: Optional[Sequence[dict]] = None,
    ) -> List[int]:
        """The prompt's token ids, as :meth:`chat` would run them."""
        text, imgs = _prepare(messages, images)
        options = json.dumps({"tools": None if tools is None else list(tools)})
        return self._native.prompt_ids(text, imgs, options)
