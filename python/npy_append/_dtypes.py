"""Conversions between numpy dtypes and .npy header descriptors."""

import ast

import numpy as np

try:
    from numpy.lib import format as _format
except ImportError:  # pragma: no cover
    import numpy.lib.format as _format


def descr_text(dtype):
    """The header descriptor text of ``dtype``, as numpy writes it."""
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        from ._errors import UnsupportedError

        raise UnsupportedError(
            f"unsupported: object dtype {dtype} cannot be appended (its values are pickled)"
        )
    return repr(_format.dtype_to_descr(dtype))


def dtype_from_descr(text):
    """The numpy dtype of a header descriptor text."""
    return _format.descr_to_dtype(ast.literal_eval(text))
