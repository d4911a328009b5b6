"""The rules of ``GRURegressor``'s settings, written once.

``GRURegressor`` raises the message of the first rule a setting breaks; the light path that
forecasts from a saved model (:mod:`fastgru.serving`) only asks whether a stored set of
settings passes, and must not import scikit-learn to ask. Both read this table.
"""

import numbers

import numpy as np

from . import config

DTYPES = ("float32", "float64")
DEVICES = ("auto", "cpu", "cuda")
FLAGS = ("reset_after", "early_stopping", "shuffle", "warm_start", "nesterovs_momentum")


def units_tuple(units):
    """``units`` (an int or a sequence of ints) as a tuple of positive ints.

    Raises
    ------
    TypeError
        ``units`` is neither an int nor a sequence.
    ValueError
        Empty, or an element is not a positive int.
    """
    u = units
    if isinstance(u, numbers.Integral) and not isinstance(u, bool):
        u = (u,)
    try:
        u = tuple(u)
    except TypeError:
        raise TypeError(f"units must be an int or a sequence of ints, got {units!r}") from None
    if not u or not all(
        isinstance(h, numbers.Integral) and not isinstance(h, bool) and h >= 1 for h in u
    ):
        raise ValueError(
            f"units must be a positive int or a non-empty sequence of positive ints "
            f"(e.g. 50 or (50, 50)), got {units!r}"
        )
    return tuple(int(h) for h in u)


def _integer(low):
    def check(name, v):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < low:
            return f"{name} must be an integer >= {low}, got {v!r}"

    return check


def _real(low, high=None, low_open=False, high_open=False, none_ok=False):
    def check(name, v):
        if v is None and none_ok:
            return None
        if not isinstance(v, numbers.Real) or isinstance(v, bool) or not np.isfinite(v):
            return f"{name} must be a finite number, got {v!r}"
        bad = v < low or (low_open and v == low)
        if high is not None:
            bad = bad or v > high or (high_open and v == high)
        if bad:
            lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
            rng = f"{lo}{low}, {high}{hi}" if high is not None else f"{lo}{low}, inf)"
            return f"{name} must be in {rng}, got {v!r}"

    return check


def _choice(options):
    def check(name, v):
        if v not in options:
            return f"{name} must be one of {list(options)}, got {v!r}"

    return check


def _seed(name, v):
    integer = isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0
    if not (v is None or integer or isinstance(v, (np.random.Generator, np.random.RandomState))):
        return (f"{name} must be None, an integer >= 0, a numpy.random.Generator or a "
                f"RandomState, got {v!r}")  # fmt: skip


def _verbosity(name, v):
    if isinstance(v, (bool, np.bool_)):  # verbose=True, as scikit-learn's estimators take it
        return None
    return _integer(0)(name, v)


def _flag(name, v):
    if not isinstance(v, (bool, np.bool_)):
        return f"{name} must be True or False, got {v!r}"


#: Setting name -> ``check(name, value)``, which returns an error message or ``None``; in
#: the order the estimator checks them.
RULES = {
    "epochs": _integer(1),
    "batch_size": _integer(1),
    "n_iter_no_change": _integer(1),
    "verbose": _verbosity,
    "learning_rate": _real(0, low_open=True),
    "huber_delta": _real(0, low_open=True),
    "validation_fraction": _real(0, 1, low_open=True, high_open=True),
    "tol": _real(0),
    "beta_1": _real(0, 1, high_open=True),
    "beta_2": _real(0, 1, high_open=True),
    "epsilon": _real(0, low_open=True),
    "momentum": _real(0, 1),
    "optimizer": _choice(tuple(config.OPTIMIZERS)),
    "loss": _choice(tuple(config.LOSSES)),
    "device": _choice(DEVICES),
    "dtype": _choice(DTYPES),
    **dict.fromkeys(FLAGS, _flag),
    "clip_norm": _real(0, low_open=True, none_ok=True),
    "random_state": _seed,
}


def check_settings(params):
    """Raise the error of the first broken rule among ``params`` (a mapping of setting
    names to values; names it leaves out are not checked). Returns the units as a tuple
    when ``params`` has ``units``.

    Raises
    ------
    TypeError, ValueError
        Naming the setting, what it must be and the value given.
    """
    units = units_tuple(params["units"]) if "units" in params else None
    for name, check in RULES.items():
        if name in params:
            message = check(name, params[name])
            if message is not None:
                raise ValueError(message)
    return units


def settings_ok(params):
    """Whether ``check_settings(params)`` passes."""
    try:
        check_settings(params)
    except (TypeError, ValueError):
        return False
    return True
