"""fastgru: Numba-compiled GRU networks for time-series forecasting.

Importing this package compiles nothing and imports neither Numba nor scikit-learn: the
public names below load their modules on first use, so ``fastgru --help`` stays instant.
"""

__version__ = "0.1.0"

_LAZY = {
    "GRURegressor": "fastgru.estimator",
    "GRUForecaster": "fastgru.forecasting",
    "make_windows": "fastgru.windows",
    "make_inference_window": "fastgru.windows",
    "load_temperature": "fastgru.datasets",
    "NetworkSpec": "fastgru.params",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fastgru' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
