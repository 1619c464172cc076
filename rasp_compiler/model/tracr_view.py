"""tracr's names for a compiled model's vocabularies and sizes.

tracr code reads ``model.input_encoder.encode(...)``, ``model.output_encoder.decode(...)``
and ``model.model_config.num_layers``; these small classes give the same methods and
fields over our :class:`~rasp_compiler.model.config.ModelConfig`, so that code runs
unchanged. They hold no state beyond what the config already says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from rasp_compiler.errors import InputError
from rasp_compiler.rasp.exact import ExactDict


class CategoricalEncoder:
    """Token <-> id, with tracr's BOS/PAD conventions (ids are rows of the embedding)."""

    def __init__(self, encoding_map: Mapping[Any, int], enforce_bos: bool = False,
                 bos_token: Any = None, pad_token: Any = None, max_seq_len: int | None = None):
        # an ExactDict (output values) stays one: 3 and 3.0 are two outputs with two ids
        self.encoding_map = encoding_map if isinstance(encoding_map, ExactDict) else dict(encoding_map)
        self.decoding_map = {i: tok for tok, i in self.encoding_map.items()}
        self._enforce_bos, self._bos, self._pad, self._max_seq_len = enforce_bos, bos_token, pad_token, max_seq_len

    def encode(self, inputs: Sequence[Any]) -> list[int]:
        if self._enforce_bos and (not inputs or inputs[0] != self._bos):
            raise InputError(f"the first token must be the BOS token {self._bos!r}, got {list(inputs)[:1]!r}")
        if self._max_seq_len is not None and len(inputs) > self._max_seq_len:
            raise InputError(f"{len(inputs)} tokens, more than the {self._max_seq_len} this model takes (with BOS)")
        unknown = [t for t in inputs if t not in self.encoding_map]
        if unknown:
            raise InputError(f"tokens {unknown!r} are not in the vocabulary {sorted(map(repr, self.encoding_map))}")
        return [self.encoding_map[t] for t in inputs]

    def decode(self, encodings: Sequence[int]) -> list:
        unknown = [int(i) for i in encodings if int(i) not in self.decoding_map]
        if unknown:
            raise InputError(f"ids {unknown!r} are not in the encoding (0..{len(self.decoding_map) - 1})")
        return [self.decoding_map[int(i)] for i in encodings]

    @property
    def vocab_size(self) -> int:
        return len(self.encoding_map)

    @property
    def bos_token(self):
        return self._bos

    @property
    def pad_token(self):
        return self._pad

    @property
    def bos_encoding(self) -> int | None:
        return self.encoding_map.get(self._bos) if self._bos is not None else None

    @property
    def pad_encoding(self) -> int | None:
        return self.encoding_map.get(self._pad) if self._pad is not None else None


class NumericalEncoder:
    """A numerical output is its own encoding."""

    def encode(self, inputs: Sequence[float]) -> list[float]:
        return list(inputs)

    def decode(self, encodings: Sequence[float]) -> list[float]:
        return list(encodings)

    bos_token = pad_token = bos_encoding = pad_encoding = None


def _relu(x):
    import jax
    return jax.nn.relu(x)


@dataclass(frozen=True)
class TransformerConfig:
    """tracr's model config fields (our models have no layer norm and no dropout)."""

    num_heads: int
    num_layers: int
    key_size: int
    mlp_hidden_size: int
    dropout_rate: float = 0.0
    activation_function: Callable = _relu
    layer_norm: bool = False
    causal: bool = False


@dataclass(frozen=True)
class TracrOutput:
    """tracr's ``AssembledTransformerModelOutput`` fields (batch axis of 1 kept, as tracr's)."""

    decoded: list  # BOS first; None where our decoding gives None (tracr's argmax cannot)
    unembedded: Any
    layer_outputs: list
    residuals: list
    attn_logits: list
    transformer_output: Any
    input_embeddings: Any


class TracrModel:
    """A compiled model under tracr's ``AssembledTransformerModel`` names, for tracr code that
    reads or fine-tunes its parameter tree: ``params`` (tracr's nested layout,
    :mod:`rasp_compiler.model.tracr_params`), ``forward(params, ids)`` (a haiku apply with
    tracr's module names; needs dm-haiku), ``apply(tokens)``, ``model_config``,
    ``input_encoder``, ``output_encoder``, ``residual_labels``. ``params`` is a copy: tuning it
    leaves the compiled model as it was; ``apply(tokens, params)`` runs tuned parameters."""

    def __init__(self, model):
        self.model = model
        self.params = model.haiku_params
        self.model_config = model.model_config
        self.input_encoder, self.output_encoder = model.input_encoder, model.output_encoder
        self.residual_labels = model.residual_labels
        self._transformed = None

    @property
    def forward(self) -> Callable:
        if self._transformed is None:
            from rasp_compiler.model.haiku_forward import haiku_forward
            self._transformed = haiku_forward(self.model)
        return self._transformed.apply

    def get_compiled_model(self):
        """The ``hk.Transformed`` forward itself (tracr returns its haiku module here)."""
        self.forward  # noqa: B018 - builds it
        return self._transformed

    def apply(self, tokens: Sequence[Any], params=None) -> TracrOutput:
        import numpy as np

        ids = self.model.encode(tokens)[None, : len(tokens)]
        out = self.forward(self.params if params is None else params, ids)
        decoded = self.model._decode(np.asarray(out.logits[0]), self.model._n_real(tokens))
        t = out.transformer_output
        return TracrOutput(decoded, out.unembedded_output, t.layer_outputs, t.residuals, t.attn_logits, t.output,
                           t.input_embeddings)
