"""The root of every error Sample Scout raises on purpose.

Every layer (engine, models, app, ui, bench) may import this module, and it imports
nothing of the project, so it sits below all of them: it is the one engine module that
``models`` may import (see ``.importlinter``). A caller that turns failures
into one line for the user (the CLI) catches `SampleScoutError`; code that decides
what to do next catches a subclass or reads an attribute, never the message's text.
Errors that callers also catch as a built-in (`ValueError`, `RuntimeError`) keep
that base through multiple inheritance. Any thread may raise or catch them.
"""

from __future__ import annotations

__all__ = ["SampleScoutError"]


class SampleScoutError(Exception):
    """A failure Sample Scout explains itself: its message is one line for the user."""
