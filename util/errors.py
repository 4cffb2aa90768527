"""Errors a user can cause from the command line: the entry points print them as one line, without a traceback."""
import functools
import sys


class UserError(Exception):
    """Something wrong with the user's input (a flag, a file, a checkpoint); the message says what and how to fix."""


def message(error):
    """The error's own one-line message. A DataLoader worker's error reaches the main process re-raised with the
    worker's traceback in its text ("Caught UserError in DataLoader worker ... Original Traceback ..."); its last line
    ends with the original message."""
    text = str(error)
    if "Original Traceback" in text:
        last = text.strip().splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return text


def user_facing(main):
    """Decorator for entry points: a UserError (or the reversible library's shape errors) becomes one line on
    stderr and exit status 2; Ctrl-C exits with 130 without a traceback."""
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        from models.reversible import ReversibleError
        try:
            return main(*args, **kwargs)
        except (UserError, ReversibleError) as e:
            print(f"error: {message(e)}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted; checkpoints already written are kept", file=sys.stderr)
            sys.exit(130)
    return wrapper
