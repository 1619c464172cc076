"""tracr-compatible RASP: ``from rasp_compiler import rasp`` replaces ``from tracr.rasp import rasp``."""

from rasp_compiler.rasp.core import (
    Aggregate, Comparison, ConstantSOp, Encoding, Full, IndicesType, LinearSequenceMap, Map,
    RASPExpr, Select, Selector, SelectorAnd, SelectorNot, SelectorOr, SelectorWidth, SequenceMap,
    SOp, TokensType, categorical, get_encoding, indices, is_categorical, is_numerical, numerical,
    tokens,
)
from rasp_compiler.rasp.evaluate import evaluate

__all__ = [
    "Aggregate", "Comparison", "ConstantSOp", "Encoding", "Full", "IndicesType", "LinearSequenceMap",
    "Map", "RASPExpr", "Select", "Selector", "SelectorAnd", "SelectorNot", "SelectorOr",
    "SelectorWidth", "SequenceMap", "SOp", "TokensType", "categorical", "evaluate", "get_encoding",
    "indices", "is_categorical", "is_numerical", "numerical", "tokens",
]
