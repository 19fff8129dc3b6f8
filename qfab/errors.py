"""The one exception type that means "the user's input is wrong".

The CLI prints a ``QfabError`` as one line on stderr and exits with status 2; anything else
is a bug in qfab: the CLI writes its traceback to a file and exits with status 3
(``qfab.crash``).
"""


class QfabError(Exception):
    """A user error: a bad model, input file, board or option. The message is one line that
    names the problem and the node, key or file it concerns."""
