"""The one exception type that lumbarlab raises for errors a user can cause.

Widgets catch :class:`LumbarLabError` and show its message; the command line prints it
and exits non-zero. Every message says what was wrong *and* what to do instead.
"""

__all__ = ["LumbarLabError"]


class LumbarLabError(ValueError):
    """A problem with user input (a parameter, a file, a dataset), explained in words.

    It subclasses :class:`ValueError` so that code written against plain Python
    conventions still catches it.
    """
