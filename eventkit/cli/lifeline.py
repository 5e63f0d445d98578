"""Children that never outlive their supervisor (``eventkit up``, ``eventkit run --reload``).

A supervisor runs each child in a session (and so a process group) of its own, so that a
terminal's Ctrl-C reaches the supervisor alone and it can stop the children in order. That
also means nothing else stops them: a supervisor killed with SIGKILL, or by a closed terminal,
would leave them running, registered and answering with old code. So every child is bound to
its supervisor's life:

- the supervisor names itself in the child's environment (:func:`child_env`);
- the child, first thing, calls :func:`bind_to_supervisor`: on Linux it asks the kernel for
  SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``, through ctypes), elsewhere (or
  where prctl fails) a daemon thread watches its parent id change. Either way the child gets
  SIGTERM, the signal of a graceful stop: it drains, says leave, and exits;
- a supervisor signals a child's whole process group (:func:`signal_group`), so what the
  child started goes too.

A parent that died before the child bound itself is caught by comparing the parent id with
the supervisor's pid just after binding.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

__all__ = [
    "SUPERVISOR_ENV",
    "bind_to_supervisor",
    "child_env",
    "honour_stop_signals",
    "signal_group",
]

SUPERVISOR_ENV = "EVENTKIT_SUPERVISOR_PID"
"""The environment variable through which a child learns its supervisor's pid."""

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""What stops a supervisor gracefully: Ctrl-C, a stop, and a closed terminal."""

_PR_SET_PDEATHSIG = 1
_POLL_SECONDS = 0.5


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (by default this process's) for a child bound to this process."""
    out = dict(os.environ if env is None else env)
    out[SUPERVISOR_ENV] = str(os.getpid())
    return out


def bind_to_supervisor() -> str | None:
    """In a child: get SIGTERM when the supervisor dies. Returns how (or None: no supervisor).

    The variable is removed, so processes this child starts in turn are not bound to it.
    """
    raw = os.environ.pop(SUPERVISOR_ENV, None)
    if not raw or not raw.isdigit():
        return None
    supervisor = int(raw)
    how = "prctl" if _set_parent_death_signal(signal.SIGTERM) else "watch"
    if how == "watch":
        threading.Thread(
            target=_watch_parent, args=(supervisor,), name="eventkit-lifeline", daemon=True
        ).start()
    if os.getppid() != supervisor:  # it died before the binding took hold
        os.kill(os.getpid(), signal.SIGTERM)
    return how


def _set_parent_death_signal(signum: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(supervisor: int) -> None:
    """The portable fallback: the parent id changes (to init or a subreaper) when it dies."""
    while os.getppid() == supervisor:
        time.sleep(_POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


def signal_group(pid: int, signum: int) -> None:
    """Send ``signum`` to the process group led by ``pid`` (a child of its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def honour_stop_signals(handler: Callable[[int, FrameType | None], Any]) -> dict[int, Any]:
    """Install ``handler`` for SIGINT, SIGTERM and SIGHUP; returns the previous handlers.

    Explicitly, because a process started with SIGINT ignored (a background job of a
    script, ``trap '' INT``) keeps it ignored: Python installs its own Ctrl-C handler only
    where SIGINT was not ignored at start.
    """
    return {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
