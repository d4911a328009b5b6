"""A dependency-free, one-line-per-update progress bar for training epochs."""

import sys
import time


def _fmt_seconds(s):
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


class EpochProgress:
    """Draws ``Epoch 3/10 [######----] loss 0.0123 val 0.0150 1.2s/epoch ETA 8s``.

    On a terminal the line is redrawn in place; otherwise (logs, CI) one line per epoch is
    written. ``update`` is called after each epoch, ``close`` at the end.
    """

    def __init__(self, total, stream=None, width=24):
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.start = time.perf_counter()
        self.first_done = None  # when epoch 1 ended: it includes compiling the kernels
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.last = ""

    def restart(self):
        """Start the clock now (e.g. after compiling the kernels)."""
        self.start = time.perf_counter()
        self.first_done = None

    def note(self, text):
        """Write one line of text (e.g. that the kernels are being compiled) before the bar."""
        self.stream.write(text + "\n")
        self.stream.flush()

    def line(self, done, loss, val_loss=None, now=None):
        now = time.perf_counter() if now is None else now
        if done == 1 or self.first_done is None:
            self.first_done = now
            per = (now - self.start) / max(done, 1)
        else:
            # The first epoch pays for compilation (seconds on a cold cache): rate and ETA
            # come from the later ones.
            per = (now - self.first_done) / (done - 1)
        filled = int(self.width * done / max(self.total, 1))
        bar = "#" * filled + "-" * (self.width - filled)
        text = f"Epoch {done}/{self.total} [{bar}] loss {loss:.4g}"
        if val_loss is not None:
            text += f" val_loss {val_loss:.4g}"
        text += f" {per:.2f}s/epoch ETA {_fmt_seconds(per * (self.total - done))}"
        return text

    def update(self, done, loss, val_loss=None):
        text = self.line(done, loss, val_loss)
        if self.tty:
            pad = max(len(self.last) - len(text), 0)
            self.stream.write("\r" + text + " " * pad)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self.last = text

    def close(self, summary=None):
        if self.tty and self.last:
            self.stream.write("\n")
        if summary:
            self.stream.write(summary + "\n")
        self.stream.flush()
