"""How every command-line tool here ends on a user's mistake: `error: <message>` on stderr and
exit status 2 (argparse's convention), without a traceback.

The tools and the functions they call raise ordinary exceptions with messages that name the
problem and the fix (ValueError for a bad flag or file, OSError for a path or checkpoint that
cannot be read); tests and other Python callers get those exceptions. Only the command line
turns them into a one-line error. REFORMER_ZH_TRACEBACK=1 shows the traceback instead, for bug
reports.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

# what a user's input can cause; anything else is our bug and keeps its traceback
USER_ERRORS = (ValueError, OSError)


def is_user_error(error: BaseException) -> bool:
    # `datasets` reports an unreadable data file (malformed JSON, mixed columns) with its own
    # exception classes, which derive from neither
    return isinstance(error, USER_ERRORS) or type(error).__module__.split(".")[0] == "datasets"


def run_command(main: Callable[[], object]) -> None:
    try:
        main()
    except Exception as error:
        if not is_user_error(error) or os.environ.get("REFORMER_ZH_TRACEBACK") == "1":
            raise
        message = str(error) or type(error).__name__
        print(f"error: {message}\n(REFORMER_ZH_TRACEBACK=1 shows where it was raised)", file=sys.stderr)
        sys.exit(2)
