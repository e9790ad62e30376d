"""Query results for papers and tools: table, csv, json, parquet, markdown, latex (booktabs)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl

from tdw import atomic
from tdw.errors import TdwError

FORMATS = ("table", "csv", "json", "parquet", "markdown", "latex")
# what a file's suffix says it holds: `--out turn.csv` alone is a CSV file
SUFFIX_FORMATS = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".md": "markdown", ".tex": "latex",
                  ".txt": "table"}


def format_for(fmt: str | None, out: str | Path | None) -> str:
    """The format to write: the one asked for, else the one `out`'s suffix names, else a table.
    `--out turn.csv` wrote a terminal's grid into turn.csv; a suffix naming another format than
    --format's is refused rather than guessed at."""
    named = SUFFIX_FORMATS.get(Path(out).suffix.lower()) if out is not None else None
    if fmt is None:
        return named or "table"
    if fmt not in FORMATS:
        raise TdwError(f"--format {fmt!r}: one of {', '.join(FORMATS)}")
    if named is not None and named != fmt:
        raise TdwError(f"--out {out}: its suffix says {named} and --format says {fmt}; give one of them")
    return fmt


def cell(value: object, latex: bool = False) -> str:
    """A value as a paper's table shows it: floats to 4 significant digits, but never fewer than
    their integer digits (a median epoch 14,847.0 is "14847", not "1.485e+04")."""
    if value is None:
        return "" if not latex else "--"
    if isinstance(value, float):
        text = f"{value:.0f}" if 9999.5 <= abs(value) < 1e15 else f"{value:.4g}"  # .4g gives 1e+04 from 9999.5
    elif isinstance(value, list):
        text = ", ".join(cell(v) for v in value)
    else:
        text = str(value)
    if latex:
        for char, escaped in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"), ("$", r"\$"), ("{", r"\{"), ("}", r"\}")):
            text = text.replace(char, escaped)
    return text


def to_markdown(frame: pl.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "|".join("---" for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines) + "\n"


def to_latex(frame: pl.DataFrame) -> str:
    """A booktabs tabular: numbers right-aligned, text left-aligned, specials escaped."""
    align = "".join("r" if dtype.is_numeric() else "l" for dtype in frame.dtypes)
    lines = [f"\\begin{{tabular}}{{{align}}}", "\\toprule", " & ".join(cell(c, True) for c in frame.columns) + r" \\", "\\midrule"]
    lines += [" & ".join(cell(v, True) for v in row) + r" \\" for row in frame.iter_rows()]
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_records(frame: pl.DataFrame) -> str:
    """One block per row, one `column | value` line per column (psql's expanded display): what a
    result too wide for the terminal reads as, where a grid would wrap every heading."""
    width = max((len(c) for c in frame.columns), default=0)
    blocks = []
    for number, row in enumerate(frame.iter_rows(), start=1):
        values = ["null" if v is None else f"[{cell(v)}]" if isinstance(v, list) else cell(v) for v in row]
        blocks.append("\n".join([f"-[ row {number} ]" + "-" * max(width - 6, 4)]
                                 + [f"{name:<{width}} | {value}" for name, value in zip(frame.columns, values, strict=True)]))
    return "\n".join(blocks) + "\n" if blocks else f"(0 rows; columns: {', '.join(frame.columns)})\n"


def flat_for_csv(frame: pl.DataFrame) -> pl.DataFrame:
    """CSV has no nested values: a list of plain values becomes 'a;b;c', anything deeper JSON."""
    columns = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, (pl.List, pl.Array)) and not dtype.inner.is_nested():
            columns.append(pl.col(name).cast(pl.List(pl.Utf8)).list.join(";"))
        elif dtype.is_nested():
            columns.append(pl.Series(name, [None if v is None else json.dumps(v, default=str) for v in frame[name].to_list()],
                                     dtype=pl.Utf8))
    return frame.with_columns(columns) if columns else frame


def refuse_overwriting_inputs(out: str | Path, db: str | Path) -> None:
    """`--out` may not replace the warehouse, its catalog, or anything inside a run it indexes."""
    # imported here: SQLAlchemy's 0.2 s, which `tdw sql` need not pay before its query
    from tdw.warehouse.catalog import catalog_path

    target = Path(out).resolve()
    db = Path(db).resolve()
    protected = {db, catalog_path(db), Path(str(db) + ".wal")}
    if target in protected or target.is_dir():
        raise TdwError(f"--out {out}: is {'a directory' if target.is_dir() else 'an input of the warehouse'}; "
                       "write somewhere else")
    for parent in target.parents:
        if (parent / "config.json").is_file() and (parent / "checkpoints").is_dir():
            raise TdwError(f"--out {out}: lies inside the run {parent}; write somewhere else")


def render(frame: pl.DataFrame, fmt: str, width: int | None = None) -> bytes:
    """`width`: the terminal's columns, for `table`: a grid wider than that prints as records."""
    if fmt == "table":
        # strings whole: piped, a grid is read by grep and `less -S`; on a terminal, a grid a long
        # string makes too wide prints as records, which never cut a value either
        with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=65_000, tbl_width_chars=65_000, fmt_table_cell_list_len=-1):
            grid = str(frame) + "\n"
        if width is not None and max(len(line) for line in grid.splitlines()) > width:
            return to_records(frame).encode()
        return grid.encode()
    if fmt == "csv":
        return flat_for_csv(frame).write_csv().encode()
    if fmt == "json":
        return frame.write_json().encode()
    if fmt == "markdown":
        return to_markdown(frame).encode()
    if fmt == "latex":
        return to_latex(frame).encode()
    if fmt == "parquet":
        buffer = io.BytesIO()
        frame.write_parquet(buffer, compression="zstd")
        return buffer.getvalue()
    raise TdwError(f"--format {fmt!r}: one of {', '.join(FORMATS)}")


def export(frame: pl.DataFrame, fmt: str, out: str | Path | None, width: int | None = None) -> bytes | None:
    data = render(frame, fmt, width)
    if out is None:
        return data
    atomic.write_bytes(out, data)
    return None
