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


class CategoricalEncoder:
    """Token <-> id, with tracr's BOS/PAD conventions (ids are rows of the embedding)."""

    def __init__(self, encoding_map: Mapping[Any, int], enforce_bos: bool = False,
                 bos_token: Any = None, pad_token: Any = None, max_seq_len: int | None = None):
        self.encoding_map = dict(encoding_map)
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
