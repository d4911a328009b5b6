"""Test-session set-up.

Numba's CUDA simulator must be switched on before ``numba`` is first imported, so it is
done here, at collection time: without an NVIDIA driver (no ``/dev/nvidiactl``) the CUDA
tests run every kernel under ``NUMBA_ENABLE_CUDASIM=1`` on small shapes. On a machine with
a GPU the same tests run on the device. ``FASTGRU_TEST_CUDASIM=0/1`` forces either way.
"""

import os
import sys
from pathlib import Path

_force = os.environ.get("FASTGRU_TEST_CUDASIM")
if _force is not None:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1" if _force == "1" else "0"
elif "NUMBA_ENABLE_CUDASIM" not in os.environ and not os.path.exists("/dev/nvidiactl"):
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

# Keras 3 runs on its PyTorch backend in the interop tests (no TensorFlow needed).
os.environ.setdefault("KERAS_BACKEND", "torch")

# The NumPy oracle lives beside the tests.
sys.path.insert(0, str(Path(__file__).parent))
