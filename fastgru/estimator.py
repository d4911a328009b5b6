"""``GRURegressor``: a scikit-learn estimator over the fastgru engines."""

# First, before scikit-learn loads: on a cold compile cache this starts compiling the
# kernels in a second process.
from . import _early_start  # noqa: F401

# isort: split
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted, validate_data

from ._atomic import unchanged_on_failure
from .engine import (
    CPURunner,
    OptimizerState,
    TrainConfig,
    auto_is_cpu_without_asking,
    finite_float_sequences,
    predict_cpu,
    train,
)
from .params import NetworkSpec, init_params, pack, unpack
from .settings import RULES, check_settings


def _cuda_status():
    try:
        from .cuda import cuda_status
    except ImportError as exc:  # pragma: no cover - only without numba-cuda and numba.cuda
        return False, f"numba's CUDA target cannot be imported ({exc})"
    return cuda_status()


def resolve_device(device):
    """Map ``"auto"``/``"cpu"``/``"cuda"`` to the backend to use.

    ``"auto"`` picks CUDA only when a real GPU is usable (never Numba's simulator) and falls
    back to the CPU silently; ``"cuda"`` raises ``RuntimeError`` naming the reason when CUDA
    is not usable.
    """
    if device == "cpu":
        return "cpu"
    if device == "auto":
        if auto_is_cpu_without_asking():
            return "cpu"
        ok, _ = _cuda_status()
        return "cuda" if ok else "cpu"
    ok, reason = _cuda_status()
    if not ok:
        raise RuntimeError(f"device='cuda' was requested but CUDA is not usable: {reason}. "
                           "Use device='cpu' or device='auto'.")  # fmt: skip
    return "cuda"


def _in_range(converted, given, name):
    """``converted`` (the model's dtype), after checking that the conversion from ``given``
    made no finite value infinite: float64 data beyond float32's range (~3.4e38) would
    otherwise train to NaN or predict inf."""
    if converted.dtype != given and not np.isfinite(converted).all():
        raise ValueError(f"{name} has values beyond the range of {converted.dtype} (about "
                         f"{np.finfo(converted.dtype).max:.1e}); scale them, or use "
                         "dtype='float64'")  # fmt: skip
    return converted


class GRURegressor(RegressorMixin, BaseEstimator):
    """Stacked GRU network with a dense head, trained by backpropagation through time.

    Each sample is a sequence: ``X`` of shape ``(n_samples, n_timesteps, n_features)``, or
    2-D ``(n_samples, n_timesteps)`` read as one feature per step (lag windows, e.g. from a
    DataFrame). The network runs the GRU layers over the sequence and a dense layer on the
    last hidden state, predicting one value per output (``y`` 1-D), or ``n_outputs`` values
    (``y`` 2-D; direct multi-step forecasts).

    Parameters
    ----------
    units : int or sequence of int, default=(50, 50)
        Hidden units of each stacked GRU layer, bottom first. Each layer but the last
        returns its whole sequence to the next.
    epochs : int, default=10
        Passes over the training data (the most, with ``early_stopping``).
    batch_size : int, default=32
        Sequences per gradient step (the last batch of an epoch may be smaller).
    learning_rate : float, default=1e-3
        Step size of the optimizer.
    optimizer : {"adam", "sgd"}, default="adam"
        Adam (Keras' form) or stochastic gradient descent with momentum.
    loss : {"mse", "mae", "huber"}, default="mse"
        Training loss, averaged over samples and outputs.
    huber_delta : float, default=1.0
        Threshold of the Huber loss.
    reset_after : bool, default=False
        Gate convention. ``False``: the reset gate multiplies the previous state before the
        recurrent product (Cho et al. 2014). ``True``: it multiplies the recurrent product
        (cuDNN, PyTorch, Keras' default), with a separate recurrent bias; use it to
        exchange weights with those frameworks. Equations in :mod:`fastgru.cpu`.
    clip_norm : float or None, default=None
        Rescale each batch's gradient so its global L2 norm is at most this value.
    validation_fraction : float, default=0.1
        With ``early_stopping``, the fraction of the training samples held out to score
        each epoch. The *last* samples are held out, not a random subset: overlapping
        windows of one series would otherwise leak the validation data into training.
    early_stopping : bool, default=False
        Stop when the validation loss has not improved by ``tol`` for ``n_iter_no_change``
        epochs, and restore the weights of the best epoch.
    n_iter_no_change : int, default=10
        Patience of early stopping.
    tol : float, default=1e-4
        Least improvement of the validation loss that counts.
    shuffle : bool, default=True
        Shuffle the samples every epoch.
    random_state : int, numpy.random.Generator, numpy.random.RandomState or None, default=None
        Seeds the initial weights and the shuffles. An int gives bit-identical predictions
        on the CPU from one fit to the next with the same number of Numba threads (each
        batch is split across them, and the parts' gradients are summed in a fixed order).
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to train and predict. ``"auto"`` uses an NVIDIA GPU when CUDA is usable and
        the CPU otherwise; ``"cuda"`` raises an error that names why CUDA is not usable.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the weights and of the arithmetic.
    verbose : int, default=0
        ``1`` draws a progress bar (epoch, loss, validation loss, time left) on stderr.
    warm_start : bool, default=False
        ``fit`` continues from the current weights and optimizer state instead of
        re-initialising. The data and settings must give the same network shapes as
        before (features, outputs, units); otherwise ``fit`` raises a ``ValueError``.
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-7
        Adam's moment decay rates and its denominator constant.
    momentum : float, default=0.9
        Momentum of SGD.
    nesterovs_momentum : bool, default=False
        Nesterov momentum for SGD.

    Attributes
    ----------
    n_features_in_ : int
        Features per time step (for 2-D ``X``: the number of columns, as scikit-learn
        counts them, each a time step of one feature).
    feature_names_in_ : ndarray of str
        Column names, when ``X`` was a DataFrame with string column names.
    n_timesteps_in_ : int or None
        Sequence length seen in ``fit`` (``None`` for imported weights).
    n_outputs_ : int
        Width of the head.
    loss_curve_ : list of float
        Training loss of each epoch (all calls of ``fit``/``partial_fit`` since the weights
        were initialised).
    validation_scores_ : list of float or None
        Validation loss of each epoch when ``early_stopping``.
    best_loss_ : float
        Lowest validation loss (training loss without early stopping; ``partial_fit``, which
        holds nothing out, leaves the validation loss of an early-stopping fit as it is).
    n_iter_ : int
        Epochs run by the last ``fit`` (cumulative for ``partial_fit``).
    theta_ : ndarray
        All weights in one flat vector (see :mod:`fastgru.params`); ``get_weights()`` gives
        them per layer.
    device_ : str
        ``"cpu"`` or ``"cuda"``: where the last fit ran.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgru import GRURegressor, make_windows
    >>> series = np.sin(np.arange(400) / 8.0)
    >>> X, y = make_windows(series, window=20)
    >>> model = GRURegressor(units=16, epochs=3, random_state=0).fit(X, y.ravel())
    >>> model.predict(X[-1:]).shape
    (1,)
    """

    def __init__(self, units=(50, 50), epochs=10, batch_size=32, learning_rate=1e-3,
                 optimizer="adam", loss="mse", huber_delta=1.0, reset_after=False,
                 clip_norm=None, validation_fraction=0.1, early_stopping=False,
                 n_iter_no_change=10, tol=1e-4, shuffle=True, random_state=None,
                 device="auto", dtype="float32", verbose=0, warm_start=False, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-7, momentum=0.9, nesterovs_momentum=False):  # fmt: skip
        self.units = units
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.loss = loss
        self.huber_delta = huber_delta
        self.reset_after = reset_after
        self.clip_norm = clip_norm
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.shuffle = shuffle
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.verbose = verbose
        self.warm_start = warm_start
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum

    # ------------------------------------------------------------------ validation
    def _check_params(self):
        """Check every setting (``fastgru.settings``); return the units as a tuple."""
        return check_settings({name: getattr(self, name) for name in ("units", *RULES)})

    def _validate_X(self, X, reset):
        """Return ``X`` as a C-contiguous ``(n, T, F)`` array of the model's dtype."""
        dtype = np.dtype(self.dtype)
        if isinstance(X, np.ndarray) and X.dtype.kind == "f" and not X.dtype.isnative:
            # check_array would take '>f8' for "not float64" and cast it to float32.
            X = X.astype(X.dtype.newbyteorder("="))
        if not reset:
            seq = self._trusted_sequences(X)
            if seq is not None:
                # What check_array would return, without its ~80 us of generic dispatch
                # (a single-window predict is ~200 us in all).
                return _in_range(np.ascontiguousarray(seq, dtype=dtype), seq.dtype, "X")
        if X is None:
            raise ValueError("X is None; expected an array of shape "
                             "(n_samples, n_timesteps[, n_features])")  # fmt: skip
        ndim = getattr(X, "ndim", None)
        if ndim is None and not hasattr(X, "__array__"):
            ndim = np.ndim(X)  # lists
        if ndim == 3:
            X = check_array(X, dtype=[np.float32, np.float64], allow_nd=True,
                            ensure_min_features=1, input_name="X")  # fmt: skip
            if X.shape[1] == 0 or X.shape[2] == 0:
                raise ValueError(f"X has shape {X.shape}: every sequence needs at least one "
                                 "time step and one feature")  # fmt: skip
            n_features = X.shape[2]
            if reset:
                self.n_features_in_ = n_features
                self._input_ndim = 3
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            else:
                expected = self._n_step_features()
                if n_features != expected:
                    raise ValueError(
                        f"X has {n_features} features per time step, but GRURegressor was "
                        f"fitted with {expected}; expected shape (n_samples, n_timesteps, "
                        f"{expected})"
                    )
        elif ndim is not None and ndim > 3:
            raise ValueError(f"X has {ndim} dimensions; expected 3-D (n_samples, n_timesteps, "
                             "n_features) or 2-D (n_samples, n_timesteps)")  # fmt: skip
        elif not reset and getattr(self, "_input_ndim", 3) == 3 and ndim == 2:
            # Fitted on 3-D sequences: a 2-D X is (n_samples, n_timesteps) of one feature.
            if self.n_features_in_ != 1:
                raise ValueError(
                    f"X is 2-D (n_samples, n_timesteps), but the model was fitted with "
                    f"{self.n_features_in_} features per time step; pass X of shape "
                    f"(n_samples, n_timesteps, {self.n_features_in_})"
                )
            X = check_array(X, dtype=[np.float32, np.float64], input_name="X")[:, :, None]
        elif ndim in (0, 1):
            raise ValueError(f"X is {ndim}-D; expected 3-D (n_samples, n_timesteps, n_features) "
                             "or 2-D lag windows (n_samples, n_timesteps). Reshape your data: "
                             "make windows of a series with fastgru.make_windows(series, "
                             "window)")  # fmt: skip
        else:
            # 2-D lag windows, or anything scikit-learn's own checks pass: validate_data
            # gives the standard messages and tracks n_features_in_ / feature_names_in_.
            X = validate_data(self, X, reset=reset, dtype=[np.float32, np.float64])
            if reset:
                self._input_ndim = 2
            X = X[:, :, None]
        return _in_range(np.ascontiguousarray(X, dtype=dtype), X.dtype, "X")

    def _trusted_sequences(self, X):
        """``X`` as ``(n, T, F)`` when it is a finite float ndarray of the fitted shape (what
        the general checks below would accept unchanged), else ``None``."""
        if (
            type(X) is np.ndarray
            and X.ndim == 2
            and getattr(self, "_input_ndim", 3) == 2
            and not hasattr(self, "feature_names_in_")  # validate_data warns on those
            and X.shape[1] == self.n_features_in_
        ):
            X = X[:, :, None]  # lag windows of a model fitted on unnamed 2-D arrays
        return X if finite_float_sequences(X, self._n_step_features()) else None

    def _n_step_features(self):
        return self.n_features_in_ if getattr(self, "_input_ndim", 3) == 3 else 1

    def _validate_y(self, y, n_samples):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        try:
            ndim = len(np.shape(np.asarray(y)))
        except ValueError:  # ragged nested lists: check_array gives the message
            ndim = 1
        if ndim not in (1, 2):
            raise ValueError(f"y has {ndim} dimensions; expected (n_samples,) or "
                             "(n_samples, n_outputs)")  # fmt: skip
        y = check_array(y, ensure_2d=False, dtype=[np.float64, np.float32], input_name="y")
        if y.shape[0] != n_samples:
            raise ValueError(f"X and y have different numbers of samples: X has {n_samples}, "
                             f"y has {y.shape[0]}")  # fmt: skip
        if y.ndim == 2 and y.shape[1] == 0:
            raise ValueError("y has shape (n, 0); it needs at least one output column")
        return y

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y):
        """Train the network on sequences ``X`` and targets ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or (n_samples, n_timesteps)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X, y):
        """Train one more epoch on ``(X, y)``, keeping the weights and optimizer state.

        The first call initialises the network from this data's shapes. Online updates:
        call it on each new chunk of data.

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=True)

    # A fit that fails or is interrupted part way (bad data for early stopping, CUDA not
    # usable, Ctrl-C, memory) leaves the model as it was: the checks below set attributes
    # (n_features_in_, ...) before training, and a model whose n_features_in_ no longer
    # matched its weights read past the end of X in predict.
    @unchanged_on_failure
    def _fit(self, X, y, incremental):
        units = self._check_params()
        reuse = hasattr(self, "theta_") and (incremental or self.warm_start)
        Xv = self._validate_X(X, reset=not reuse)
        y = self._validate_y(y, Xv.shape[0])
        y2 = _in_range(y.reshape(len(y), -1).astype(self.dtype), y.dtype, "y")
        n_outputs = y2.shape[1]
        device = resolve_device(self.device)
        spec = NetworkSpec(Xv.shape[2], units, n_outputs, bool(self.reset_after), self.dtype)
        seed = self.random_state
        if isinstance(seed, np.random.RandomState):  # scikit-learn's convention: draw from it
            seed = int(seed.randint(np.iinfo(np.int32).max))
        rng = np.random.default_rng(seed)
        if reuse and getattr(self, "spec_", None) == spec:
            theta = self.theta_.copy()
            opt = OptimizerState(self._opt_m.copy(), self._opt_v.copy(), self._opt_step.copy())
            if incremental and hasattr(self, "_rng"):
                rng = self._rng
        else:
            if reuse:
                raise ValueError(
                    "warm_start/partial_fit needs data and parameters of the same shape as "
                    f"before: fitted {self.spec_}, now {spec}. Fit a new model instead."
                )
            theta = init_params(spec, rng).astype(self.dtype)
            opt = OptimizerState.zeros(theta.size, theta.dtype)
            self.loss_curve_ = []
            self.validation_scores_ = [] if self.early_stopping else None
            self.best_loss_ = np.inf
            self.n_iter_ = 0

        X_val = y_val = None
        X_tr, y_tr = Xv, y2
        if self.early_stopping and not incremental:
            n = len(Xv)
            n_val = int(np.ceil(n * self.validation_fraction))
            if n < 2:
                got = "1 sample" if n == 1 else f"{n} samples"
                raise ValueError("early_stopping needs at least 2 samples to hold out a "
                                 f"validation set; got {got}")  # fmt: skip
            n_val = min(max(n_val, 1), n - 1)
            X_tr, y_tr = Xv[: n - n_val], y2[: n - n_val]
            X_val, y_val = Xv[n - n_val :], y2[n - n_val :]

        cfg = TrainConfig(
            epochs=1 if incremental else self.epochs, batch_size=self.batch_size,
            optimizer=self.optimizer, learning_rate=self.learning_rate, beta1=self.beta_1,
            beta2=self.beta_2, epsilon=self.epsilon, momentum=self.momentum,
            nesterov=self.nesterovs_momentum, loss=self.loss, huber_delta=self.huber_delta,
            clip_norm=self.clip_norm, shuffle=self.shuffle,
            early_stopping=self.early_stopping and not incremental,
            n_iter_no_change=self.n_iter_no_change, tol=self.tol,
        )  # fmt: skip
        runner = self._make_runner(device, spec, theta, opt, cfg, X_tr, y_tr)
        progress = None
        if self.verbose:
            from .progress import EpochProgress

            progress = EpochProgress(cfg.epochs)
            if device == "cpu":
                from .cpu import kernels_cacheable, kernels_compiled

                if kernels_compiled(spec.dtype) is False:
                    progress.note(
                        "Compiling the CPU kernels: the first run takes longer; later runs "
                        "load them from Numba's cache." if kernels_cacheable() else
                        "Compiling the CPU kernels (FASTGRU_NO_CACHE is set: every new "
                        "process compiles them)."
                    )  # fmt: skip
            prepare = getattr(runner, "prepare", None)
            if prepare is not None:
                prepare()  # compile before the clock starts: epoch 1 times training only
                progress.restart()

        def on_epoch(epoch, hist):
            if progress is not None:
                progress.update(epoch + 1, hist.loss[-1],
                                hist.val_loss[-1] if hist.val_loss else None)  # fmt: skip
            return False

        hist = train(runner, cfg, rng, len(X_tr), X_val, y_val, on_epoch)
        theta, opt = runner.finish()
        if progress is not None:
            final = hist.loss[-1] if hist.loss else float("nan")
            n = len(hist.loss)
            summary = (
                f"Trained {n} epoch{'s' if n != 1 else ''} on {device}: final loss {final:.4g}"
            )
            if hist.stopped_early and hist.best_epoch >= 0:
                summary += (f"; stopped early, kept the weights of epoch {hist.best_epoch + 1} "
                            f"(validation loss {hist.val_loss[hist.best_epoch]:.4g})")  # fmt: skip
            progress.close(summary)

        self.spec_ = spec
        self.theta_ = np.ascontiguousarray(theta, dtype=self.dtype)
        self._opt_m, self._opt_v, self._opt_step = opt.m, opt.v, opt.step
        self._rng = rng
        self.device_ = device
        self.n_outputs_ = n_outputs
        self._y_ndim = y.ndim
        self.n_timesteps_in_ = int(Xv.shape[1])
        self.loss_curve_ = list(self.loss_curve_) + hist.loss
        if hist.val_loss:
            self.validation_scores_ = list(self.validation_scores_ or []) + hist.val_loss
        if not (incremental and self.validation_scores_):
            # (partial_fit holds nothing out: its training loss is no validation loss)
            self.best_loss_ = float(min(self.best_loss_, hist.best_loss))
        self.n_iter_ = (self.n_iter_ + len(hist.loss)) if incremental else len(hist.loss)
        if hist.diverged:
            if hist.loss:
                kept = "of the last finite epoch"
            else:
                kept = "from before this call" if incremental else "it started from"
            warnings.warn(
                f"Training stopped after {len(hist.loss)} complete epoch(s): the loss, its "
                f"gradient or the weights became NaN or infinite. The weights {kept} were "
                f"kept. Try a lower learning_rate (now {self.learning_rate}), set clip_norm "
                "(e.g. 1.0), or scale X and y (e.g. MinMaxScaler).",
                RuntimeWarning,
                stacklevel=3,
            )
        elif (not incremental and self.early_stopping and not hist.stopped_early
              and self.epochs > 1):  # fmt: skip
            warnings.warn(
                f"Early stopping did not trigger within epochs={self.epochs}; the validation "
                "loss was still improving. Consider more epochs.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self

    def _make_runner(self, device, spec, theta, opt, cfg, X, y):
        if device == "cuda":
            from .cuda import CUDARunner

            return CUDARunner(spec, theta, opt, cfg, X, y)
        return CPURunner(spec, theta, opt, cfg, X, y)

    # ------------------------------------------------------------------ predicting
    def predict(self, X):
        """Predict the target of each sequence.

        Sequences may have another length than those seen in ``fit`` (3-D ``X``); the
        number of features per step must match.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_timesteps, n_features) or (n_samples, n_timesteps)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs), float64
        """
        if not hasattr(self, "theta_"):
            check_is_fitted(self, "theta_")  # raises NotFittedError with sklearn's message
        Xv = self._validate_X(X, reset=False)
        device = resolve_device(self.device)
        if device == "cuda":
            from .cuda import predict_cuda

            out = predict_cuda(self.spec_, self.theta_, Xv)
        else:
            out = predict_cpu(self.spec_, self.theta_, Xv)
        out = np.asarray(out, dtype=np.float64)
        return out.ravel() if self._y_ndim == 1 else out

    # ------------------------------------------------------------------ weights
    def get_weights(self):
        """The fitted weights per layer.

        Returns
        -------
        layers : list of dict
            Per GRU layer: ``W (F, 3H)``, ``U (H, 3H)``, ``b (3H,)``, ``bh (3H,)`` or ``None``
            (seed convention); gate order r, z, n (see :mod:`fastgru.params`).
        head : dict
            ``W (H, n_outputs)`` and ``b (n_outputs,)``.
        """
        check_is_fitted(self, "theta_")
        return unpack(self.spec_, self.theta_)

    @classmethod
    def from_weights(cls, layers, head, *, n_timesteps=None, y_ndim=None, **params):
        """A fitted regressor holding the given weights (e.g. imported from another framework).

        Parameters
        ----------
        layers, head
            As returned by :meth:`get_weights`; ``reset_after`` is inferred from whether the
            layers carry a recurrent bias ``bh`` unless given in ``params``.
        n_timesteps : int, optional
            Sequence length to record as ``n_timesteps_in_``.
        y_ndim : {1, 2}, optional
            Shape of ``predict``'s output; default 1 for one output, else 2.
        **params
            Constructor parameters (``dtype``, ``device``, training settings for later fits).
        """
        layers = list(layers)
        if not layers:
            raise ValueError("from_weights needs at least one GRU layer")
        params.setdefault("reset_after", layers[0].get("bh") is not None)
        units = tuple(int(np.asarray(layer["U"]).shape[0]) for layer in layers)
        given = params.setdefault("units", units)
        model = cls(**params)
        if model._check_params() != units:  # get_params, clone and save would disagree
            raise ValueError(f"units={given!r} contradicts the weights' layer widths {units}; "
                             "leave units out (they come from the weights)")  # fmt: skip
        n_features = int(np.asarray(layers[0]["W"]).shape[0])
        n_outputs = int(np.asarray(head["W"]).shape[1])
        if y_ndim not in (None, 1, 2) or (y_ndim == 1 and n_outputs != 1):
            raise ValueError(f"y_ndim must be None, 1 (one output only) or 2; got {y_ndim!r} "
                             f"for {n_outputs} output(s)")  # fmt: skip
        if n_timesteps is not None and not (isinstance(n_timesteps, numbers.Integral)
                                            and not isinstance(n_timesteps, bool)
                                            and n_timesteps >= 1):  # fmt: skip
            raise ValueError(f"n_timesteps must be None or an integer >= 1, got {n_timesteps!r}")
        spec = NetworkSpec(n_features, units, n_outputs, bool(model.reset_after), model.dtype)
        model.spec_ = spec
        model.theta_ = pack(spec, layers, head)
        opt = OptimizerState.zeros(model.theta_.size, model.theta_.dtype)
        model._opt_m, model._opt_v, model._opt_step = opt.m, opt.v, opt.step
        model.n_features_in_ = n_features
        model._input_ndim = 3
        model.n_outputs_ = n_outputs
        model._y_ndim = y_ndim or (1 if n_outputs == 1 else 2)
        model.n_timesteps_in_ = n_timesteps
        model.loss_curve_ = []
        model.validation_scores_ = None
        model.best_loss_ = np.inf
        model.n_iter_ = 0
        model.device_ = "cpu"
        return model

    def save(self, path):
        """Save the fitted model to one file (weights and JSON metadata; no pickle).

        The write is atomic: the file appears complete or not at all.

        Parameters
        ----------
        path : str or Path
        """
        from .io import regressor_state, write_model

        check_is_fitted(self, "theta_")
        meta, arrays = regressor_state(self)
        write_model(path, "GRURegressor", meta, arrays)

    @classmethod
    def load(cls, path):
        """Load a model saved by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            No such file.
        fastgru.io.ModelFileError
            Not a fastgru model file, truncated, corrupted or incompatible.
        """
        from .io import read_model, regressor_from_state

        header, arrays = read_model(path, kind="GRURegressor")
        return regressor_from_state(header["metadata"], arrays, where=str(path))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        # A few epochs of a recurrent net on scikit-learn's tabular check data do not reach
        # the R^2 > 0.5 that check_regressors_train asks of well-tuned regressors.
        tags.regressor_tags.poor_score = True
        return tags
