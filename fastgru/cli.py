"""The ``fastgru`` command line: train on a CSV, forecast, evaluate, run the demo.

Heavy modules (pandas, Numba, scikit-learn) are imported inside the commands so that
``fastgru --help`` stays instant. Bad input never shows a traceback: one line on stderr,
exit code 2, and no partial output file.
"""

import os
import sys
import tempfile
import time
import warnings
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="fastgru",
    help="Numba-compiled GRU forecasting: train on a CSV, forecast, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Fill(str, Enum):
    ffill = "ffill"
    interpolate = "interpolate"
    drop = "drop"


class Scaler(str, Enum):
    minmax = "minmax"
    standard = "standard"
    none = "none"


class Loss(str, Enum):
    mse = "mse"
    mae = "mae"
    huber = "huber"


def _print_version(value: bool):
    if value:
        from . import __version__

        typer.echo(f"fastgru {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print fastgru's version and exit.",
        ),  # fmt: skip
    ] = False,
):
    pass


#: Exit status when stdout is closed early (``fastgru info | head -1``): 128 + SIGPIPE, what
#: the shell reports for a tool the signal ends. (Python ignores SIGPIPE and gets an error.)
STDOUT_CLOSED = 141


def _stdout_closed():
    """The exit status after a write found stdout's reader gone: the reader's choice, not an
    error, so no message. Points stdout at ``os.devnull``, so that Python's flush of what is
    still buffered does not print "Exception ignored ... BrokenPipeError" at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (a test's captured stdout)
        pass
    return STDOUT_CLOSED


def fail(message):
    """Print one line on stderr and exit with code 2."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(2)


class _UserErrors:
    """Turns the errors bad input raises into :func:`fail`, and the warnings about the data
    (``DateWarning``) into one ``Warning: ...`` line each on stderr, when they happen."""

    def __enter__(self):
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        shown = warnings.showwarning  # the one in place: other warnings still go there

        def show(message, category, filename, lineno, file=None, line=None):
            if category.__name__ == "DateWarning":  # (without importing pandas for it)
                typer.echo(f"Warning: {message}", err=True)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        return self

    def __exit__(self, kind, exc, tb):
        self._warnings.__exit__(kind, exc, tb)
        if exc is None or isinstance(exc, typer.Exit):  # fail() already printed its line
            return False
        if isinstance(exc, BrokenPipeError):  # an OSError, but no user's mistake
            raise typer.Exit(_stdout_closed())
        from .data import DataError
        from .io import ModelFileError

        if isinstance(exc, FileNotFoundError):
            fail(exc.strerror and f"{exc.strerror}: {exc.filename}" or str(exc))
        if isinstance(exc, (DataError, ModelFileError, ValueError, RuntimeError, TypeError,
                            OSError)):  # fmt: skip
            fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return False


def _parse_ints(text, name):
    try:
        values = tuple(int(v) for v in text.split(","))  # (an empty item: an error too)
    except ValueError:
        fail(f"{name} must be comma-separated integers like 50,50, got {text!r}")
    if not values or min(values) < 1:
        fail(f"{name} must be positive integers like 50,50, got {text!r}")
    return values


def _check_writable(path):
    """Fail before any work when ``path`` cannot be written: a missing folder or a folder,
    with the messages a model file's write gives (:class:`_UserErrors` prints them).
    Returns the folder."""
    from .io import writable_folder

    return writable_folder(Path(path))


def _atomic_write(path, write):
    """Call ``write(tmp_path)`` then move the file into place: no partial output on failure."""
    path = Path(path)
    folder = _check_writable(path)
    from .io import replacement_mode

    mode = replacement_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=folder)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _require_matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        fail('--plot needs matplotlib, which is not installed: pip install "fastgru[plot]"')
    return plt


def _plot_format(path):
    """The image format of a ``--plot`` file from its suffix (none: PNG); fails on a suffix
    matplotlib cannot write, rather than writing a PNG under another name."""
    from matplotlib.backend_bases import FigureCanvasBase

    suffix = Path(path).suffix.lower().lstrip(".")
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix and suffix not in formats:
        fail(f"--plot cannot write .{suffix} files; use one of "
             f"{', '.join('.' + f for f in sorted(formats))}")  # fmt: skip
    return suffix or "png"


TargetOpt = Annotated[str | None, typer.Option("--target", "-t", help="Column to forecast.")]
DateOpt = Annotated[str | None, typer.Option(help="Date column (default: found by name).")]
FeaturesOpt = Annotated[str | None, typer.Option(help="Extra input columns, comma-separated.")]
FillOpt = Annotated[Fill | None, typer.Option(help="Fill missing values (default: error).")]


def _forecaster(target, date_col, features, window, horizon, units, epochs, batch_size,
                lr, device, fill, scaler, loss, reset_after, seed, early_stopping,
                verbose):  # fmt: skip
    from .forecasting import GRUForecaster

    if not lr > 0:  # (and not NaN)
        fail(f"--lr must be a number > 0, got {lr}")
    feats = [f.strip() for f in features.split(",") if f.strip()] if features else None
    return GRUForecaster(
        window=window, horizon=horizon, target=target, features=feats, date_col=date_col,
        scaler=scaler.value, fill=fill.value if fill else None,
        units=_parse_ints(units, "--units"), epochs=epochs, batch_size=batch_size,
        learning_rate=lr, loss=loss.value, reset_after=reset_after, random_state=seed,
        device=device.value, early_stopping=early_stopping, verbose=verbose,
    )  # fmt: skip


def _describe(fc):
    units = fc.regressor_.spec_.units
    layers = " -> ".join(f"GRU({h})" for h in units)
    return f"{layers} -> Dense({fc.horizon})"


@app.command()
def train(
    csv: Annotated[Path, typer.Argument(help="CSV file with a date column.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file to write.")] = Path(
        "model.fgru"
    ),
    target: TargetOpt = None,
    date_col: DateOpt = None,
    features: FeaturesOpt = None,
    window: Annotated[int, typer.Option(min=1, help="Past steps per sample.")] = 100,
    horizon: Annotated[int, typer.Option(min=1, help="Steps predicted at once.")] = 1,
    units: Annotated[str, typer.Option(help="GRU widths, bottom first.")] = "50,50",
    epochs: Annotated[int, typer.Option(min=1)] = 10,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    lr: Annotated[float, typer.Option(help="Learning rate (Adam), > 0.")] = 1e-3,
    loss: Loss = Loss.mse,
    scaler: Scaler = Scaler.minmax,
    fill: FillOpt = None,
    device: Device = Device.auto,
    reset_after: Annotated[bool, typer.Option(help="cuDNN/PyTorch/Keras gate form.")] = False,
    early_stopping: Annotated[bool, typer.Option(help="Hold out the last 10%.")] = False,
    seed: Annotated[int | None, typer.Option(help="Random seed (reproducible fit).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
):
    """Train a GRU forecaster on a CSV and save it to a model file."""
    with _UserErrors():
        from .data import read_csv

        _check_writable(out)
        df = read_csv(csv, date_col)
        fc = _forecaster(target, date_col, features, window, horizon, units, epochs, batch_size,
                         lr, device, fill, scaler, loss, reset_after, seed, early_stopping,
                         0 if quiet else 1)  # fmt: skip
        t0 = time.perf_counter()
        fc.fit(df)
        _atomic_write(out, fc.save)
        reg = fc.regressor_
        final = reg.loss_curve_[-1] if reg.loss_curve_ else float("nan")
        typer.echo(
            f"Trained {_describe(fc)} on {fc.n_train_} rows of {fc.columns_[0]!r} "
            f"({reg.n_iter_} epoch{'s' if reg.n_iter_ != 1 else ''} on {reg.device_}, final "
            f"loss {final:.4g}, "
            f"{time.perf_counter() - t0:.1f} s); saved {out}"
        )


@app.command()
def forecast(
    model: Annotated[Path, typer.Argument(help="Model file written by 'fastgru train'.")],
    csv: Annotated[Path, typer.Argument(help="CSV with recent history (same columns).")],
    steps: Annotated[
        int | None,
        typer.Option(
            min=1,
            # Parentheses, not brackets: Rich reads [...] in help texts as markup and drops it.
            help="Future steps to forecast (default: 7; for a model with "
            "features, at most its horizon: the CLI has no future feature values).",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the forecast to this CSV.")] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Plot history and forecast (PNG; or PDF, SVG, JPEG... by the file's suffix)."
        ),
    ] = None,
    fill: FillOpt = None,
):
    """Forecast the steps after the end of a CSV with a trained model."""
    with _UserErrors():
        plt = _require_matplotlib() if plot is not None else None
        plot_format = _plot_format(plot) if plot is not None else None
        for path in (out, plot):
            if path is not None:
                _check_writable(path)
        from .data import _find_date_column, prepare_frame, read_csv
        from .serving import load_forecaster

        fc = load_forecaster(model)  # without scikit-learn: most of a forecast's start-up
        df = read_csv(csv, fc.date_col)
        if fill is not None:
            fc.fill = fill.value
        if steps is None:
            steps = min(7, fc.horizon) if len(fc.columns_) > 1 else 7
        pred = fc.predict(steps=steps, data=df)
        name = fc.columns_[0]
        table = pred.to_frame(name)
        # The model keeps date_col only where it was given: else name the column this CSV's
        # dates came from, found as prepare_frame found it, not "Date" whatever it is called.
        table.index.name = _find_date_column(df, fc.date_col) or "Date"
        typer.echo(table.to_string(float_format=lambda v: f"{v:.4f}"))
        if out is not None:
            _atomic_write(out, lambda p: table.to_csv(p, float_format="%.6f"))
        if plt is not None:
            dates, values, _ = prepare_frame(df, name, fc.columns_[1:], fc.date_col, fc.fill)
            keep = max(3 * fc.window, 3 * steps)

            def draw(p):
                fig, ax = plt.subplots(figsize=(10, 4))
                ax.plot(dates[-keep:], values[-keep:, 0], label="history")
                ax.plot(pred.index, pred.to_numpy(), "o-", label="forecast")
                ax.set_ylabel(name)
                ax.legend()
                fig.autofmt_xdate()
                fig.savefig(p, format=plot_format, dpi=100, bbox_inches="tight")
                plt.close(fig)

            _atomic_write(plot, draw)


@app.command()
def evaluate(
    csv: Annotated[Path, typer.Argument(help="CSV file with a date column.")],
    target: TargetOpt = None,
    date_col: DateOpt = None,
    features: FeaturesOpt = None,
    test_size: Annotated[float, typer.Option(help="Fraction (or rows, if >= 1) to test.")] = 0.1,
    refit_every: Annotated[int | None, typer.Option(min=1, help="Rolling-origin refits.")] = None,
    season_length: Annotated[int | None, typer.Option(min=1)] = None,
    window: Annotated[int, typer.Option(min=1)] = 100,
    horizon: Annotated[int, typer.Option(min=1)] = 1,
    units: Annotated[str, typer.Option()] = "50,50",
    epochs: Annotated[int, typer.Option(min=1)] = 10,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    lr: Annotated[float, typer.Option(help="Learning rate (Adam), > 0.")] = 1e-3,
    loss: Loss = Loss.mse,
    scaler: Scaler = Scaler.minmax,
    fill: FillOpt = None,
    device: Device = Device.auto,
    seed: Annotated[int | None, typer.Option()] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
):
    """Backtest on the end of a CSV: the GRU against naive and seasonal-naive forecasts."""
    with _UserErrors():
        from .data import read_csv

        df = read_csv(csv, date_col)
        fc = _forecaster(target, date_col, features, window, horizon, units, epochs, batch_size,
                         lr, device, fill, scaler, loss, False, seed, False,
                         0 if quiet else 1)  # fmt: skip
        fc.season_length = season_length
        if test_size >= 1 and test_size != int(test_size):
            fail(f"--test-size must be a fraction in (0, 1) or a whole number of rows, got "
                 f"{test_size}")  # fmt: skip
        size = int(test_size) if test_size >= 1 else test_size
        metrics = fc.backtest(df, test_size=size, refit_every=refit_every)
        n = fc.backtest_predictions_["origin"].nunique()
        typer.echo(f"Backtest: {n} forecast origins, horizon {fc.horizon}, seasonal period "
                   f"{fc.season_length_}")  # fmt: skip
        typer.echo(metrics.to_string(float_format=lambda v: f"{v:.4f}"))
        scored = int(metrics.loc["seasonal_naive", "origins"])
        if scored == 0:
            typer.echo(f"(seasonal_naive: no origin has a value one season ({fc.season_length_} "
                       "steps) earlier; a shorter --season-length gives it one)")  # fmt: skip
        elif scored < n:
            typer.echo(f"(seasonal_naive is scored on the {scored} origins with a value one "
                       "season earlier)")  # fmt: skip


@app.command()
def demo(
    epochs: Annotated[int, typer.Option(min=1)] = 10,
    window: Annotated[int, typer.Option(min=1)] = 100,
    units: Annotated[str, typer.Option()] = "50,50",
    device: Device = Device.auto,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
):
    """The seed example on the bundled data: daily temperatures -> next-day forecast.

    MinMax scaling, windows of 100 days, GRU(50) -> GRU(50) -> Dense(1), Adam 1e-3, MSE,
    10 epochs, batch 32.
    """
    with _UserErrors():
        from .datasets import load_temperature
        from .forecasting import GRUForecaster

        layers = _parse_ints(units, "--units")
        df = load_temperature()
        if not quiet:
            typer.echo(f"Bundled data: {len(df)} daily temperatures from "
                       f"{df['Date'].iloc[0]:%Y-%m-%d} to {df['Date'].iloc[-1]:%Y-%m-%d}",
                       err=True)  # fmt: skip
        fc = GRUForecaster(window=window, horizon=1, target="Temp", date_col="Date",
                           units=layers, epochs=epochs, batch_size=32,
                           learning_rate=1e-3, random_state=0, device=device.value,
                           verbose=0 if quiet else 1)  # fmt: skip
        fc.fit(df)
        value = float(fc.predict(steps=1).iloc[0])
        typer.echo(f"The predicted temperature for the next day is: {value:.2f}°C")


@app.command()
def info():
    """Versions, threads, compile cache and whether CUDA is usable."""
    import platform

    import numba
    import numpy
    import pandas
    import sklearn

    from . import __version__, cpu
    from .estimator import _cuda_status

    ok, reason = _cuda_status()
    # Where Numba really caches (a read-only NUMBA_CACHE_DIR makes it fall back elsewhere).
    where = cpu.cache_directory()
    if where is None:
        cache = "off: every process compiles (FASTGRU_NO_CACHE, or no writable folder)"
    else:
        ready = {True: "float32 kernels compiled", False: "float32 kernels not compiled yet",
                 None: "contents unknown"}[cpu.kernels_compiled("float32")]  # fmt: skip
        cache = f"{where} ({ready})"
    rows = [
        ("fastgru", __version__),
        ("python", platform.python_version()),
        ("numpy", numpy.__version__),
        ("numba", numba.__version__),
        ("pandas", pandas.__version__),
        ("scikit-learn", sklearn.__version__),
        ("cpu threads", f"{numba.get_num_threads()} (Numba), {os.cpu_count()} cores"),
        ("compile cache", cache),
        ("cuda", f"usable: {reason}" if ok else f"not usable: {reason}"),
    ]
    with _UserErrors():  # a closed stdout (fastgru info | head -1): a quiet exit
        for k, v in rows:
            typer.echo(f"{k:<14} {v}")


def _no_garbage_collection_at_exit():
    """Skip the interpreter's garbage collections at exit. With Numba, pandas and Typer
    loaded they walk ~150,000 tracked objects several times: ~0.3 s of a 1.2 s ``fastgru
    forecast``. ``gc.freeze`` in an exit handler leaves only reference counting to run
    after it; Python never promised ``__del__`` for objects still alive at exit, and every
    file this command line writes is closed before it returns."""
    import atexit
    import gc

    atexit.unregister(gc.freeze)  # once, however often main() runs in one process
    atexit.register(gc.freeze)


def main(argv=None):
    """Console entry point: the Typer app, with its usage errors (a bad option value, an
    unknown option) also reported as one ``Error:`` line and exit code 2.

    Without ``argv`` (the ``fastgru`` script, ``python -m fastgru``) the process is about
    to exit when it returns, and exits without its final garbage collections. A stdout
    closed before all is written (``fastgru info | head -1``) ends it quietly with status
    141, as the signal SIGPIPE ends other tools."""
    if argv is None:
        _no_garbage_collection_at_exit()
    code = _run(argv)
    try:  # what is still buffered goes out here, where a closed pipe can be told apart
        sys.stdout.flush()
    except BrokenPipeError:
        return _stdout_closed()
    return code


def _run(argv):
    """The Typer app's exit code for ``argv``, usage errors reported as one line."""
    import typer.main

    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="fastgru", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except Exception as exc:
        # Click's UsageError family (vendored by Typer): duck-typed to avoid private imports.
        if not hasattr(exc, "format_message") or getattr(exc, "exit_code", None) != 2:
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":
            typer.echo(exc.format_message())
            return 0
        message = " ".join(exc.format_message().split())
        hint = f" (see 'fastgru {exc.ctx.info_name} --help')" if getattr(exc, "ctx", None) else ""
        if exc.ctx is not None and exc.ctx.parent is None:
            hint = " (see 'fastgru --help')"
        typer.echo(f"Error: {message}{hint}", err=True)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
