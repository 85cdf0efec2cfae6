"""app package.

numpy's BLAS is held to one thread in the app's process (unless the environment says
otherwise), set here because it must happen before numpy loads. Its only large products
are the re-ranker's small batched ones, where a second thread saves about 8 % (21 against
23 ms for 10 room fits) but takes the core that the audio engine's process and the
encoder's own thread pool need; two processes fitting at once ran 5 times slower with
threaded BLAS.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
