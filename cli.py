"""The entry layer shared by train.py and test.py: how errors reach the user.

A mistake the user can make (util.errors.UserError, or the reversible library's ReversibleError for shapes and
configurations it cannot run) ends in one line on stderr and exit status 2; Ctrl-C in a line and status 130. Saved
checkpoints are untouched in both cases (they are written atomically)."""
import functools
import sys

from models.reversible import ReversibleError
from util.errors import UserError, message


def user_facing(main):
    """Decorator for an entry point's ``main``."""
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except (UserError, ReversibleError) as e:
            print(f"error: {message(e)}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted; checkpoints already written are kept", file=sys.stderr)
            sys.exit(130)
    return wrapper
