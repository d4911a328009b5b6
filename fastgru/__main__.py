"""``python -m fastgru``: the same command line as ``fastgru``."""

from fastgru.cli import app

app(prog_name="fastgru")
