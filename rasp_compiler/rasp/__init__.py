"""tracr-compatible RASP: ``from rasp_compiler import rasp`` replaces ``from tracr.rasp import rasp``.

Every public name of ``tracr.rasp.rasp`` is here with tracr's meaning (see
docs/tracr_compat.md for the few documented differences).
"""

from rasp_compiler.rasp.core import (
    DEFAULT_ANNOTATORS, Aggregate, Annotations, Annotator, Comparison, ConstantSelector, ConstantSOp,
    Encoding, Full, IndicesType, LengthType, LinearSequenceMap, Map, NumericValue, Predicate, RASPExpr,
    RASPExprT, Select, Selector, SelectorAnd, SelectorNot, SelectorOr, SelectorValue, SelectorWidth,
    SequenceMap, SOp, SOpT, T, TokensType, Value, VT, annotate, categorical, default_encoding,
    default_name, get_encoding, indices, is_categorical, is_numerical, length, numerical,
    selector_and, selector_not, selector_or, sop_not, tokens,
)
from rasp_compiler.rasp.evaluate import DefaultRASPEvaluator, RASPEvaluator, evaluate

__all__ = [
    "DEFAULT_ANNOTATORS", "Aggregate", "Annotations", "Annotator", "Comparison", "ConstantSelector",
    "ConstantSOp", "DefaultRASPEvaluator", "Encoding", "Full", "IndicesType", "LengthType",
    "LinearSequenceMap", "Map", "NumericValue", "Predicate", "RASPEvaluator", "RASPExpr", "RASPExprT",
    "Select", "Selector", "SelectorAnd", "SelectorNot", "SelectorOr", "SelectorValue", "SelectorWidth",
    "SequenceMap", "SOp", "SOpT", "T", "TokensType", "Value", "VT", "annotate", "categorical",
    "default_encoding", "default_name", "evaluate", "get_encoding", "indices", "is_categorical",
    "is_numerical", "length", "numerical", "selector_and", "selector_not", "selector_or", "sop_not",
    "tokens",
]
