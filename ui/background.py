"""One background thread per owner, running jobs in order, results delivered on the GUI thread.

Qt's ``QThreadPool`` waits for its running jobs when its owner widget is destroyed; that
wait happens with the GIL held, and a job that needs the GIL to finish then deadlocks the
app. Emitting a signal of a widget that was destroyed meanwhile crashes. So: jobs run on a
plain daemon thread, and their results travel through a relay object that lives as long as
the worker; on the GUI thread the relay drops results whose receiver is gone.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable

from PyQt6 import sip
from PyQt6.QtCore import QObject, pyqtSignal


class _Relay(QObject):
    finished = pyqtSignal(object, object, str)

    def __init__(self):
        super().__init__()
        self.finished.connect(self._deliver)

    def _deliver(self, callback, result, error: str) -> None:
        owner = getattr(callback, "__self__", None) or getattr(getattr(callback, "func", None),
                                                               "__self__", None)
        if isinstance(owner, QObject) and sip.isdeleted(owner):
            return
        callback(result, error)


class SerialWorker:
    """Runs jobs one after the other on a daemon thread. Construct and call on the GUI thread."""

    def __init__(self, name: str):
        self._relay = _Relay()
        self._jobs: queue.Queue = queue.Queue()
        self._idle = threading.Condition()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def call(self, fn: Callable[[], object], callback: Callable[[object, str], None]) -> None:
        """Run ``fn`` on the worker; then ``callback(result, error_text)`` on the GUI thread."""
        with self._idle:
            self._pending += 1
        self._jobs.put((fn, callback))

    def wait(self, msecs: int = 30000) -> bool:
        """True once every job has run (its callback may still be queued), False after ``msecs``."""
        deadline = time.monotonic() + msecs / 1000
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def _run(self) -> None:
        while True:
            fn, callback = self._jobs.get()
            try:
                result, error = fn(), ""
            except Exception as exc:  # noqa: BLE001 - shown to the user as one line
                result, error = None, str(exc)
            self._relay.finished.emit(callback, result, error)
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()
