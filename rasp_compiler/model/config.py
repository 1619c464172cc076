"""What a compiled model is, apart from its weights: sizes, vocabularies and labels.

Everything here is plain data (strings, numbers, tuples) so it goes into a weight
file's JSON metadata unchanged and a loaded model needs nothing else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    d_mlp: int
    max_seq_len: int
    vocab: tuple  # input tokens, without BOS and PAD
    bos: Any
    pad: Any
    causal: bool
    output: str  # label of the program's output SOp
    output_numerical: bool
    output_values: tuple  # categorical: one per logit; numerical: the values it can take (for decoding)
    # categorical Aggregates compiled without a proof that they copy one value (guarded at run time);
    # absent from files written before it existed, which means none
    unproven_aggregates: tuple[str, ...] = ()

    @property
    def input_tokens(self) -> tuple:
        """Token of each row of the embedding: BOS, PAD, then the vocabulary."""
        return (self.bos, self.pad, *self.vocab)

    @property
    def n_ctx(self) -> int:
        return self.max_seq_len + 1

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "ModelConfig":
        data = dict(data)
        for key in ("vocab", "output_values", "unproven_aggregates"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)


@dataclass(frozen=True)
class ModelLabels:
    """What every part of the model stands for."""

    residual: tuple[str, ...]  # one per residual dimension
    heads: tuple[tuple[str, ...], ...]  # [layer][head] -> RASP node ("" for an unused head)
    mlps: tuple[tuple[tuple[str, int, int], ...], ...]  # [layer] -> (node, first neuron, end)
    neurons: tuple[tuple[str, ...], ...]  # [layer][neuron] -> what it detects ("" if unused)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "ModelLabels":
        return cls(
            residual=tuple(data["residual"]),
            heads=tuple(tuple(h) for h in data["heads"]),
            mlps=tuple(tuple((str(n), int(a), int(b)) for n, a, b in layer) for layer in data["mlps"]),
            neurons=tuple(tuple(n) for n in data["neurons"]),
        )
