"""The end-to-end fixtures (tests/e2e/stack.py): the local stack, real browsers."""

from tests.e2e.stack import local_stack, new_browser

__all__ = ["local_stack", "new_browser"]
