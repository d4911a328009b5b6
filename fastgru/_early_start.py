"""Imported first by :mod:`fastgru.estimator`, for its side effect: on a cold compile cache,
start the float32 precompile helper (:func:`fastgru._precompile.start_early`) before
scikit-learn is imported (~1.5-2 s on the development machine), so that the helper is
compiling while the caller imports and loads its data, not only from the first ``fit``.
"""

from . import _precompile

_precompile.start_early()
