"""Plugin chains inside the audio process: live monitoring (input chain) and the preview chain.

A `Chain` holds plugin objects and cannot cross into the audio process, so its description
does: the preset document made by `chain_presets.chain_to_dict` (VST3 state included). The app
validates it with the preset parser (`parse_preset`, plugin paths only inside the allowed VST3
folders) and sends it; in the audio process a `ChainHost` control thread builds a fresh Chain
from it, off the audio thread, and publishes it to the callback with one reference assignment.
Parameter changes and bypass toggles travel as small messages (`messages.ChainRequest`) that
the same control thread applies to the live chain, in the order they were sent.

Threads: `ChainHost.submit` may be called from any thread of the audio process; everything
else in `ChainHost` runs on its own control thread. `route_monitor` runs on the audio thread.
"""

from __future__ import annotations

import math
import queue
import threading
from typing import Callable

import numpy as np

from .messages import BuildChain, ChainRequest, SetChainBypass, SetChainParameter

__all__ = ["CHAIN_NAMES", "ChainHost", "check_chain_name", "member_index", "route_monitor"]

CHAIN_NAMES = ("input", "preview")


def check_chain_name(name: str) -> str:
    if name not in CHAIN_NAMES:
        raise ValueError(f"chain must be 'input' or 'preview', not {name!r}")
    return name


def member_index(member_ids: list[str], member_id: str | int) -> int:
    """Position of a member given its id (as registered with the spec) or its index."""
    if isinstance(member_id, int) and not isinstance(member_id, bool):
        if 0 <= member_id < len(member_ids):
            return member_id
        raise ValueError(f"member index {member_id} is outside 0..{len(member_ids) - 1}")
    try:
        return member_ids.index(str(member_id))
    except ValueError:
        raise ValueError(f"no member {member_id!r} in this chain") from None


def route_monitor(processed: np.ndarray, outdata: np.ndarray) -> None:
    """Add the monitored input (frames, input_channels) to the output. Audio thread.

    Same channel count or mono input: added as is (mono goes to every output channel).
    Several inputs to one output: their mean. Otherwise the first channels pair up."""
    cin = processed.shape[1]
    cout = outdata.shape[1]
    if cin == cout or cin == 1:
        outdata += processed
    elif cout == 1:
        outdata[:, 0] += processed.mean(axis=1)
    else:
        k = min(cin, cout)
        outdata[:, :k] += processed[:, :k]


class ChainHost:
    """Builds and edits the audio process's own chains on a control thread.

    `publish(name, chain_or_None)` hands a ready chain to the callback (a reference assignment);
    `reply(token, error_or_None)` reports each request's outcome to the app.
    """

    def __init__(self, sample_rate: int, channels: dict[str, int], max_block_size: int,
                 publish: Callable[[str, object], None], reply: Callable[[int, str | None], None],
                 vst3_paths=(), vst3_cache_dir: str | None = None):
        self.sample_rate = sample_rate
        self.channels = dict(channels)
        self.max_block_size = max_block_size
        self.publish = publish
        self.reply = reply
        self.vst3_paths = list(vst3_paths)
        self.vst3_cache_dir = vst3_cache_dir
        self._scanner = None
        self._chains: dict[str, object] = {}
        self._generation = {name: -1 for name in CHAIN_NAMES}
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="chain-control", daemon=True)
        self._thread.start()

    # ---- any thread of the audio process ---------------------------------------------------

    def submit(self, request: ChainRequest) -> None:
        """Queue a request; the control thread handles them in order and answers each."""
        self._queue.put(request)

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
        for name in list(self._chains):
            self.publish(name, None)
        self._chains.clear()

    # ---- control thread ---------------------------------------------------------------------

    def _run(self) -> None:
        from .chain import ChainError
        while True:
            request = self._queue.get()
            if request is None:
                return
            try:
                error = self.HANDLERS[type(request)](self, request)
            except ChainError as exc:
                error = str(exc)
            except Exception as exc:  # noqa: BLE001 - any failure is reported, the host lives on
                error = f"{type(exc).__name__}: {exc}"
            self.reply(request.token, error)

    def _scanner_for(self):
        if self._scanner is None:
            from .plugins import PluginScanner
            self._scanner = PluginScanner(self.vst3_paths, cache_dir=self.vst3_cache_dir)
        return self._scanner

    def _member(self, request: SetChainParameter | SetChainBypass):
        """(chain, member) a running-chain edit applies to; ChainError saying why there is none."""
        from .chain import ChainError
        name = request.chain
        chain = self._chains.get(name)
        if request.generation != self._generation[name] or chain is None:
            raise ChainError(f"the {name} chain changed or failed to load; parameter not applied")
        members = chain.snapshot.members
        if not 0 <= request.index < len(members):
            raise ChainError(f"no member {request.index} in the {name} chain")
        return chain, members[request.index]

    def _set_parameter(self, request: SetChainParameter) -> None:
        from .chain import set_member_parameter
        _, member = self._member(request)
        set_member_parameter(member, request.name, request.value)

    def _set_bypass(self, request: SetChainBypass) -> None:
        chain, member = self._member(request)
        chain.set_bypass(member.id, bool(request.bypassed))

    def _build(self, request: BuildChain) -> str | None:
        name, generation, spec = request.chain, request.generation, request.spec
        if generation <= self._generation[name]:
            return None  # already built, or an older description overtaken by a newer one
        self._generation[name] = generation
        if spec is None or not spec.get("members"):
            self._chains.pop(name, None)
            self.publish(name, None)
            return None
        from .chain import Chain
        from .chain_presets import PresetError, build_members, parse_preset
        from .plugins import resolve_roots
        try:
            preset = parse_preset(spec, resolve_roots(self.vst3_paths))
            scanner = self._scanner_for() if any(m.type == "vst3" for m in preset.members) else None
            chain = Chain(name, self.sample_rate, self.channels[name], self.max_block_size, scanner)
            members, bypassed = build_members(preset, chain)
            chain.replace(members, bypassed)
        except PresetError as exc:
            self._chains.pop(name, None)
            self.publish(name, None)
            return str(exc)
        self._chains[name] = chain
        self.publish(name, chain)
        return None

    HANDLERS = {BuildChain: _build, SetChainParameter: _set_parameter, SetChainBypass: _set_bypass}


def finite_number(value) -> float:
    """A parameter value as float; ValueError for anything but a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ValueError(f"parameter value must be a finite number, got {value!r}")
    return float(value)
