"""Progress lines of a running night: one plain line per stage step and per training epoch.

Each line goes to Prefect's run logger inside a flow or task run (so it reaches the Prefect UI) and
to the ``clickrec.progress`` logger always, which the CLI shows on stderr by default (rich on a
terminal, plain timestamped lines otherwise; ``--quiet`` hides them, ``--verbose`` shows Prefect's own
log lines instead). Outside the CLI it propagates to ``clickrec`` like any library logger.
"""

from __future__ import annotations

import logging

PROGRESS_LOGGER = "clickrec.progress"


def progress(message: str) -> None:
    """Report one line of progress (see the module docstring for where it goes)."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        get_run_logger().info(message)
    except MissingContextError:
        pass
    logging.getLogger(PROGRESS_LOGGER).info(message)


def show_on_stderr(rich_terminal: bool) -> None:
    """The CLI's default: progress lines on stderr, and not again through the root logger."""
    import sys

    logger = logging.getLogger(PROGRESS_LOGGER)
    if rich_terminal and sys.stderr.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=Console(stderr=True), show_path=False, show_level=False,
                                               markup=False, rich_tracebacks=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
