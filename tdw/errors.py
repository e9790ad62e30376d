"""The one exception type users see: its message is the single line the CLI prints."""


class TdwError(Exception):
    """Bad input or a refused operation; the CLI prints `tdw: <message>` and exits non-zero."""
