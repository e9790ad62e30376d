"""A browser tab that went away is not a problem: the server says nothing about it.

A researcher who reloads the dashboard, or closes its tab, while the server is still sending that
tab an update (a section being drawn just after the page opened, say) got a warning from Bokeh or
Panel ("Failed sending message as connection was closed") and, for each message already handed to
Tornado, a "Task exception was never retrieved" traceback ending in `WebSocketClosedError` on the
terminal running `tdw serve`. Reloading within a second of opening the page did it about every
other time. Nothing was wrong (Bokeh discards the session when the socket closes), but the traceback
reads like a crash, and buried real errors among the false ones.

What is dropped is exactly that: Bokeh's and Panel's warning, and an unretrieved exception whose type is
Tornado's closed-socket or closed-stream error. Every other exception still reaches the loop's own
handler and is logged as before. With TDW_DASHBOARD_TIMINGS=2 each one dropped is one debug line.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError

CLOSED_SOCKET_ERRORS = (WebSocketClosedError, StreamClosedError)
CLOSED_WARNING = "Failed sending message as connection was closed"
# who warns so: Bokeh's websocket handler, and Panel's writer of a document's pending messages
CLOSED_TAB_LOGGERS = ("bokeh.server.views.ws", "panel.io.document")
log = logging.getLogger("tdw.dashboard.closed_tabs")


def _not_a_closed_tab(record: logging.LogRecord) -> bool:
    if record.getMessage() != CLOSED_WARNING:
        return True
    log.debug("a tab closed with a message in flight (%s's warning dropped)", record.name)
    return False


def quiet_closed_tabs(loop: asyncio.AbstractEventLoop) -> None:
    """Drop the closed-tab warning and errors on `loop` (the server's); idempotent."""
    for name in CLOSED_TAB_LOGGERS:
        logger = logging.getLogger(name)
        if _not_a_closed_tab not in logger.filters:
            logger.addFilter(_not_a_closed_tab)
    previous = loop.get_exception_handler()
    if getattr(previous, "quiets_closed_tabs", False):
        return

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if isinstance(error, CLOSED_SOCKET_ERRORS):
            log.debug("a tab closed with a message in flight (%s dropped)", type(error).__name__)
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    handle.quiets_closed_tabs = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handle)
