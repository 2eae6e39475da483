"""Conversions between numpy dtypes and .npy header descriptors."""

from __future__ import annotations

import ast
from typing import Any

import numpy as np
import numpy.typing as npt

try:
    from numpy.lib import format as _format
except ImportError:  # pragma: no cover
    import numpy.lib.format as _format


def descr_text(dtype: npt.DTypeLike) -> str:
    """The header descriptor text of ``dtype``, as numpy writes it."""
    dt = np.dtype(dtype)
    if dt.hasobject:
        from ._errors import UnsupportedError

        raise UnsupportedError(
            f"unsupported: object dtype {dt} cannot be appended (its values are pickled)"
        )
    return repr(_format.dtype_to_descr(dt))


def dtype_from_descr(text: str) -> np.dtype[Any]:
    """The numpy dtype of a header descriptor text."""
    dt: np.dtype[Any] = _format.descr_to_dtype(ast.literal_eval(text))
    return dt
