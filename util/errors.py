"""Errors a user can cause from the command line: the entry points print them as one line, without a traceback
(see cli.py)."""


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
