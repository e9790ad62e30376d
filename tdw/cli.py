"""`tdw` command line: each command is one module in tdw/commands/ with `register` and `run`."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import tdw.commands
from tdw.denormals import flush_denormals_to_zero
from tdw.errors import TdwError
from tdw.memory import reuse_freed_memory
from tdw.versions import tdw_version

COMMAND_ORDER = ["train", "extend", "densify", "import", "list", "verify", "analyze", "index", "sql", "probe", "intervene", "export", "report", "view", "bundle", "serve", "sweep", "jobs"]


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default, where it says something: not "(default: None)" or "(default: False)"
    after an option whose help already states its default ("default: auto, the grid up to p=64")."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


class OneLineParser(argparse.ArgumentParser):
    """Usage errors are one line; every command's help shows its defaults."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # one clear line, exit 2, as for every bad input
        self.exit(2, f"tdw {self.prog.split(' ', 1)[-1] if ' ' in self.prog else ''}: {message}\n".replace("tdw : ", "tdw: "))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="tdw",
        description="Training Dynamics Workbench: train, analyze, index and explore grokking runs.",
    )
    parser.add_argument("--version", action="version", version=f"tdw {tdw_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    modules = {m.name: m.name for m in pkgutil.iter_modules(tdw.commands.__path__) if not m.name.startswith("_")}
    names = [n for n in COMMAND_ORDER if n in modules] + sorted(set(modules) - set(COMMAND_ORDER))
    for name in names:
        module = importlib.import_module(f"tdw.commands.{name}")
        command = module.register(sub)
        command.set_defaults(handler=module.run)
    return parser


# commands that compute with tensors for a long time: their process keeps freed memory (tdw.memory)
# and flushes denormals to zero (tdw.denormals); the others need neither (list, probe, sql, verify import no torch)
COMPUTE_COMMANDS = frozenset({"train", "extend", "densify", "analyze", "intervene", "sweep"})


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    if argv is None and args.command in COMPUTE_COMMANDS:  # this process is the command (not a caller's)
        flush_denormals_to_zero()  # before torch's first parallel op, so that its threads inherit it
        reuse_freed_memory()
    try:
        return int(args.handler(args) or 0)
    except TdwError as error:
        print(f"tdw {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tdw {args.command}: interrupted; completed checkpoints and artifacts are kept", file=sys.stderr)
        return 130
    except OSError as error:  # a file or port the user named: unwritable, missing, busy
        where = f"{error.filename}: " if error.filename else ""
        print(f"tdw {args.command}: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - the one boundary: a bug is one line and a saved traceback
        report = write_traceback(args.command)
        print(f"tdw {args.command}: unexpected error ({error.__class__.__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
              f"traceback written to {report}", file=sys.stderr)
        return 1


def write_traceback(command: str) -> Path:
    """Save the current exception's traceback where a bug report can pick it up."""
    folder = Path(os.environ.get("TDW_CRASH_DIR", Path(tempfile.gettempdir()) / "tdw-crashes"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{command}.txt"
    path.write_text(f"tdw {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}")
    return path


if __name__ == "__main__":
    sys.exit(main())
