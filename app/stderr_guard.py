"""Keeps C libraries (libjack, ALSA, mpg123) from printing on the terminal while
the app probes devices: their messages duplicate the one-line answer the app
gives itself. Main thread only (it redirects the process-wide fd 2)."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
