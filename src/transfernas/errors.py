"""The one base class of the errors a user can fix by changing a parameter or an input.

A run that ends with one of these prints the project's message and exits with 2 (see
``transfernas.cli``): a bad parameter, a data folder or file that does not follow its layout, a
resume against a run written by another search. Any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Raised for a cause outside the code; the message alone tells the user what to change."""


def user_error(exc: BaseException) -> UserError | None:
    """The first :class:`UserError` in the chain a traceback would show (Kedro wraps errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, UserError):
            return current
        seen.add(id(current))
        suppressed = current.__suppress_context__
        current = current.__cause__ or (None if suppressed else current.__context__)
    return None
