"""Reports: a variant, a comparison of variants, or a saved view, as one self-contained HTML file,
a PDF and Markdown, drawn without a browser (HoloViews' matplotlib backend, as `tdw export
figure` draws).

Every number in a report is a cell of a query against the warehouse's sql/ views, and the report
prints that query beside it (HTML: under the number; Markdown and PDF: numbered, listed at the
end), with the variant written into it, so `tdw sql` reproduces it as it stands. The report also
records tdw's version, the git sha and every run's analyzer versions.

    tdw report p53_seed999                 # reports/p53_seed999.{html,pdf,md}
    tdw report --compare p53_seed1,p53_seed2
    tdw report my-saved-view               # a saved view (tdw/saved_views.py)
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from dashboards.saved_views import Selection
from tdw import atomic
from tdw.errors import TdwError
from tdw.versions import git_sha, tdw_version
from tdw.warehouse.export import cell, refuse_overwriting_inputs, to_markdown
from tdw.warehouse.query import check_read_only, open_readonly, sql_string

FORMATS = ("html", "pdf", "md")
STANDARD_FIGURES = ("loss_curves", "event_timeline", "specialization", "participation_ratio", "frequency_norms",
                    "neuron_clusters", "graduation_map")
OVERLAYS = ("test loss", "W_in participation ratio", "specialized fraction", "test inputs graduated")
TABLE_ROWS = 24


@dataclass
class Fact:
    name: str  # a stable key (the HTML's data-fact)
    label: str
    value: object
    sql: str


@dataclass
class Table:
    name: str
    title: str
    frame: pl.DataFrame
    sql: str
    note: str = ""


@dataclass
class Figure:
    title: str
    png: bytes
    pdf_figure: object  # a matplotlib Figure, drawn into the PDF


@dataclass
class Section:
    title: str
    facts: list[Fact] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


@dataclass
class Report:
    name: str
    title: str
    sections: list[Section]
    provenance: dict

    def queries(self) -> list[str]:
        """Every distinct query of the report, in order: what the footnote numbers point to."""
        seen: list[str] = []
        for section in self.sections:
            for item in [*section.facts, *section.tables]:
                if item.sql not in seen:
                    seen.append(item.sql)
        return seen


class Warehouse:
    """One sandboxed connection for a report's queries; each is checked as `tdw sql` checks."""

    def __init__(self, db: str | Path) -> None:
        self.db = Path(db)
        self.con = open_readonly(db)

    def frame(self, sql: str) -> pl.DataFrame:
        sql = textwrap.dedent(sql).strip()
        check_read_only(self.con, sql)
        return self.con.sql(sql).pl()

    def variants(self) -> list[str]:
        return self.frame("select variant from variants order by variant")["variant"].to_list()

    def close(self) -> None:
        self.con.close()


def facts_from(warehouse: Warehouse, sql: str, labels: dict[str, str]) -> list[Fact]:
    """One Fact per column named in `labels`, from the single row `sql` returns (None when none)."""
    sql = textwrap.dedent(sql).strip()
    rows = warehouse.frame(sql).to_dicts()
    row = rows[0] if rows else {}
    return [Fact(column, label, row.get(column), sql) for column, label in labels.items()]


def variant_facts(warehouse: Warehouse, variant: str) -> list[Fact]:
    v = sql_string(variant)
    facts = facts_from(warehouse, f"""
        select memorization_epoch, turn_epoch, grok_epoch, turn_to_grok
        from grokking_turn where variant = {v}""",
        {"memorization_epoch": "memorization (train loss settles)", "turn_epoch": "grokking turn",
         "grok_epoch": "grokked (test accuracy reached)", "turn_to_grok": "epochs from turn to grok"})
    facts += facts_from(warehouse, f"""
        select start_epoch as cleanup_start, end_epoch as cleanup_end
        from training_phases where variant = {v} and phase = 'cleanup'""",
        {"cleanup_start": "cleanup begins", "cleanup_end": "cleanup ends"})
    facts += facts_from(warehouse, f"""
        select key_frequencies, key_frequency_rule, specialized_fraction, pr_w_in_at_turn, pr_w_in_min, final_train_loss,
               final_test_loss, outlier, outlier_measures
        from variant_summary where variant = {v}""",
        {"key_frequencies": "key frequencies",
         "key_frequency_rule": "rule that found the key frequencies",
         "specialized_fraction": "specialized neurons (final fraction)",
         "pr_w_in_at_turn": "participation ratio of W_in at the turn", "pr_w_in_min": "lowest participation ratio of W_in",
         "final_train_loss": "final train loss", "final_test_loss": "final test loss",
         "outlier": "outlier among its family", "outlier_measures": "measures that made it an outlier"})
    facts += facts_from(warehouse, f"""
        select min(epoch) filter (where split = 'train' and graduated_fraction >= 0.5) as train_half_graduated,
               min(epoch) filter (where split = 'test' and graduated_fraction >= 0.5) as test_half_graduated
        from graduation_curve where variant = {v}""",
        {"train_half_graduated": "half the train inputs graduated (answered right from then on) by epoch",
         "test_half_graduated": "half the test inputs graduated by epoch"})
    facts += facts_from(warehouse, f"""
        select count(*) filter (where graduation_epoch is null) as test_never_graduated
        from input_graduation where variant = {v} and split = 'test'""",
        {"test_never_graduated": "test inputs never graduated"})
    facts += facts_from(warehouse, f"""
        select list(frequency order by first_epoch, frequency) as clusters_formed,
               coalesce(list(frequency order by last_epoch, frequency) filter (where status = 'lost'), []) as clusters_dropped
        from frequency_lifecycle where variant = {v}""",
        {"clusters_formed": "frequencies whose neurons form a cluster (frequency_lifecycle), in the order they form",
         "clusters_dropped": "clusters formed and gone by the last checkpoint"})
    facts += facts_from(warehouse, f"""
        select llc_peak, llc_peak_epoch, llc_collapse_epoch from variant_summary where variant = {v}""",
        {"llc_peak": "largest LLC of all weights (SGLD, where estimated: tdw analyze --analyzers llc)",
         "llc_peak_epoch": "largest LLC at epoch",
         "llc_collapse_epoch": "the LLC of all weights collapses (its first change point down) at epoch"})
    return facts


def epoch_table(warehouse: Warehouse, variant: str) -> Table:
    v = sql_string(variant)
    sql = textwrap.dedent(f"""
        with l as (
            select epoch, max(loss) filter (where split = 'train') as train_loss,
                   max(loss) filter (where split = 'test') as test_loss,
                   max(accuracy) filter (where split = 'test') as test_accuracy
            from losses where variant = {v} group by epoch
        ), s as (
            select epoch, specialized_fraction from neuron_specialization where variant = {v}
        ), pr as (
            select epoch, participation_ratio as pr_w_in from participation_ratio where variant = {v} and matrix = 'W_in'
        ), c as (
            select epoch, row_number() over (order by epoch) - 1 as i, count(*) over () as n
            from checkpoints where variant = {v}
        )
        select c.epoch, l.train_loss, l.test_loss, l.test_accuracy, s.specialized_fraction, pr.pr_w_in
        from c left join l using (epoch) left join s using (epoch) left join pr using (epoch)
        where c.i % greatest(1, ceil(c.n / {TABLE_ROWS})::int) = 0 or c.i = c.n - 1
        order by c.epoch""").strip()
    return Table("epochs", f"{variant} by epoch (at most {TABLE_ROWS + 1} checkpoints, evenly spaced, and the last)",
                 warehouse.frame(sql), sql)


def provenance(warehouse: Warehouse, variants: list[str]) -> dict:
    from tdw.run_dir import RunDir
    from tdw.warehouse.bundle import analyzer_versions

    runs = warehouse.frame("select variant, path from src_runs order by variant")
    versions = {}
    for variant, path in runs.iter_rows():
        if variant in variants and Path(path).is_dir():
            versions[variant] = {t: f"{a['analyzer']} v{a['version']}" for t, a in analyzer_versions(RunDir(path)).items()
                                 if a["analyzer"]}  # interventions and shared bases are not an analyzer's
    return {"tdw_version": tdw_version(), "git_sha": git_sha() or "unknown",
            "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "warehouse": str(warehouse.db), "analyzer_versions": versions}


def draw(element, title: str) -> Figure:
    """A HoloViews element drawn by matplotlib: PNG bytes for HTML and Markdown, the Figure for the PDF."""
    import holoviews as hv

    from dashboards.export import _holoviews

    _holoviews()
    previous = hv.Store.current_backend
    hv.Store.set_current_backend("matplotlib")
    try:
        figure = hv.render(element, backend="matplotlib")
    finally:
        hv.Store.set_current_backend(previous)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return Figure(title, buffer.getvalue(), figure)


def view_figure(store, view: str, variant: str, at: Selection | None = None, log_epochs: bool = False) -> Figure:
    """One view of one variant drawn at a selection (the last checkpoint, neuron, head and input 0
    when none), titled with what it is drawn at; with `log_epochs` a view over epochs against log epochs."""
    from dashboards.export import render_view

    at = at or Selection(None)
    shown, element = render_view(store, view, variant, at.epoch, at.neuron, at.head, "matplotlib", at.pair,
                                 log_epochs=log_epochs, pinned=at.pinned)
    where = "" if shown.over_epochs else f" at epoch {at.epoch if at.epoch is not None else store.checkpoint_epochs(variant)[-1]}"
    what = [f"neuron {at.neuron}"] if "neuron" in shown.needs else []
    what += [f"head {at.head}"] if "head" in shown.needs else []
    what += [f"input {' and '.join((at.pair, *at.pinned))}"] if "pair" in shown.needs else []
    return draw(element, f"{shown.title}: {variant}{where}" + "".join(f", {w}" for w in what))


def check_variants(warehouse: Warehouse, variants: list[str]) -> None:
    known = warehouse.variants()
    for variant in variants:
        if variant not in known:
            raise TdwError(f"variant {variant}: not in the warehouse; known: {', '.join(known)}")


def variant_report(db: str | Path, variant: str) -> Report:
    from dashboards.store import WarehouseStore

    warehouse = Warehouse(db)
    store = WarehouseStore(db)
    try:
        check_variants(warehouse, [variant])
        facts = Section("Key facts", facts=variant_facts(warehouse, variant))
        table = Section("Per-epoch summary", tables=[epoch_table(warehouse, variant)])
        figures = Section("Figures", figures=[view_figure(store, name, variant) for name in STANDARD_FIGURES])
        return Report(variant, f"tdw report: {variant}", [facts, table, figures], provenance(warehouse, [variant]))
    finally:
        store.close()
        warehouse.close()


def comparison_report(db: str | Path, variants: list[str], all_columns: bool = False) -> Report:
    import holoviews as hv

    from dashboards.comparisons import overlay
    from dashboards.export import _holoviews, render_view
    from dashboards.store import WarehouseStore

    if len(variants) < 2:
        raise TdwError("--compare: name at least two variants, comma-separated")
    _holoviews()
    warehouse = Warehouse(db)
    store = WarehouseStore(db)
    try:
        check_variants(warehouse, variants)
        names = ", ".join(sql_string(v) for v in variants)
        # in the order they were named: the researcher's order (a baseline first, say), not the alphabet's
        sql = f"select * from variant_summary where variant in ({names}) order by list_position([{names}], variant)"
        summary = warehouse.frame(sql)
        same = [] if all_columns else [c for c in summary.columns
                                       if c != "variant" and len({repr(x) for x in summary[c].to_list()}) == 1]
        note = (f"Only the columns that differ; the same in every variant: {', '.join(same)} "
                "(--all-columns shows them)." if same else "")
        shown = summary.drop(same)
        table = Section("Summary", tables=[Table("variant_summary", "variant_summary", shown, sql, note)])
        previous = hv.Store.current_backend
        hv.Store.set_current_backend("matplotlib")
        try:
            # aligned at the turn when some variant has one; when none turned, aligning would leave
            # every overlay empty ("no variant has this measure and a turn"), so they are by epoch
            turned = sorted(store.turns(variants))
            aligned = bool(turned)
            # one scale where the runs are as long (seeds of one configuration compare at a glance);
            # otherwise a short run beside a long one is a line at the left edge: the overlays take
            # a log epoch axis (aligned: epoch / turn epoch) and the small multiples their own axes
            shared = len({max(store.checkpoint_epochs(v), default=None) for v in variants}) == 1
            how = (f"aligned at each variant's turn ({len(turned)} of {len(variants)} turned)" if aligned
                   else "by epoch (no variant has a turn to align at)")
            how += "" if shared else ", on a log epoch axis (the runs' lengths differ)"
            overlays = [draw(overlay(store, variants, measure, aligned, log_epochs=not shared).opts(
                                 fig_inches=(7, 4.5), aspect="auto"),
                             f"{measure}, {how}") for measure in OVERLAYS]
            # one legend, on the last panel (the colours are the same in every panel), and no A/B/C
            # panel letters: the panels' titles name the variants
            cells = [render_view(store, "loss_curves", v, None, 0, 0, "matplotlib")[1].opts(
                         title=v, fig_inches=(3.5, 2.6), show_legend=i == len(variants) - 1)
                     for i, v in enumerate(variants)]
            columns = min(3, len(cells))  # a Layout's fig_inches is the whole figure's: 3.5 inches a panel
            multiples = draw(hv.Layout(cells).cols(columns).opts(fig_inches=(3.5 * columns, 2.6), sublabel_format="",
                                                                  hspace=0.5, shared_axes=shared),
                             "Loss curves, one per variant" + ("" if shared else ", each on its own axes (the runs' lengths differ)"))
        finally:
            hv.Store.set_current_backend(previous)
        figures = Section("Overlays and small multiples", figures=[*overlays, multiples])
        return Report("compare_" + "_".join(variants), f"tdw report: {', '.join(variants)}", [table, figures],
                      provenance(warehouse, variants))
    finally:
        store.close()
        warehouse.close()


def saved_view_report(db: str | Path, saved) -> Report:
    """A saved view (dashboards/saved_views.py): its views for each of its variants, at its pinned
    epochs, neurons, heads and inputs (`SavedView.selections`), after each variant's key facts."""
    from dashboards.store import WarehouseStore
    from dashboards.views import get_view

    warehouse = Warehouse(db)
    store = WarehouseStore(db)
    try:
        check_variants(warehouse, saved.variants)
        sections = []
        for variant in saved.variants:
            section = Section(variant, facts=variant_facts(warehouse, variant)[:4])
            checkpoints = store.checkpoint_epochs(variant)
            for name in saved.views:
                view = get_view(name)
                section.figures += [view_figure(store, name, variant, at, saved.log_epochs)
                                    for at in saved.selections(view.needs, view.over_epochs, checkpoints)]
            sections.append(section)
        return Report(saved.name, saved.title or f"tdw report: {saved.name}", sections, provenance(warehouse, saved.variants))
    finally:
        store.close()
        warehouse.close()


# --- writing -------------------------------------------------------------------------------

CSS = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}
td.label{text-align:left}pre{background:#f5f5f5;padding:.5em;white-space:pre-wrap;font-size:85%}
details summary{cursor:pointer;color:#555;font-size:85%}img{max-width:100%}.provenance{color:#555;font-size:85%}"""


def value_text(value: object) -> str:
    """A fact's value as printed: n/a where the warehouse has none, "none" for an empty list (no
    frequency dropped, no measure making it an outlier)."""
    return "n/a" if value is None else "none" if value == [] else cell(value)


def to_html(report: Report) -> str:
    def sql_block(sql: str) -> str:
        return f"<details><summary>SQL</summary><pre class=\"sql\">{html.escape(sql)}</pre></details>"

    parts = [(f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(report.title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(report.title)}</h1>")]
    for section in report.sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.facts:
            parts.append("<table class=\"facts\">")
            for fact in section.facts:
                parts.append(f"<tr><td class=\"label\">{html.escape(fact.label)}</td>"
                             f"<td class=\"value\" data-fact=\"{fact.name}\">{html.escape(value_text(fact.value))}</td>"
                             f"<td class=\"label\">{sql_block(fact.sql)}</td></tr>")
            parts.append("</table>")
        for table in section.tables:
            head = "".join(f"<th>{html.escape(c)}</th>" for c in table.frame.columns)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(value_text(v))}</td>" for v in row) + "</tr>"
                           for row in table.frame.iter_rows())
            parts.append(f"<h3>{html.escape(table.title)}</h3>" + (f"<p>{html.escape(table.note)}</p>" if table.note else "")
                         + f"<table class=\"data\" data-table=\"{table.name}\"><tr>{head}</tr>{body}</table>{sql_block(table.sql)}")
        for figure in section.figures:
            data = base64.b64encode(figure.png).decode()
            parts.append(f"<h3>{html.escape(figure.title)}</h3><img alt=\"{html.escape(figure.title)}\" "
                         f"src=\"data:image/png;base64,{data}\">")
    parts.append(f"<h2>Provenance</h2><pre class=\"provenance\">{html.escape(provenance_text(report))}</pre></body></html>")
    return "".join(parts)


def provenance_text(report: Report) -> str:
    p = report.provenance
    lines = [f"tdw {p['tdw_version']} (git {p['git_sha']}), generated {p['generated_at']} from {p['warehouse']}"]
    for variant, versions in p["analyzer_versions"].items():
        lines.append(f"{variant}: " + ", ".join(sorted(set(versions.values()))))
    return "\n".join(lines)


def to_markdown_text(report: Report, figures_folder: str) -> str:
    queries = report.queries()
    lines = [f"# {report.title}", ""]
    figure_index = 0
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        if section.facts:
            lines += ["| fact | value | SQL |", "|---|---|---|"]
            lines += [f"| {f.label} | {value_text(f.value)} | [{queries.index(f.sql) + 1}] |" for f in section.facts]
            lines.append("")
        for table in section.tables:
            lines += [f"### {table.title} [{queries.index(table.sql) + 1}]", ""] + ([table.note, ""] if table.note else [])
            lines += [to_markdown(table.frame), ""]
        for figure in section.figures:
            figure_index += 1
            lines += [f"### {figure.title}", "", f"![{figure.title}]({figures_folder}/figure_{figure_index:02d}.png)", ""]
    lines += ["## SQL", ""]
    for i, sql in enumerate(queries, 1):
        lines += [f"[{i}]", "", "```sql", sql, "```", ""]
    lines += ["## Provenance", "", "```", provenance_text(report), "```", ""]
    return "\n".join(lines)


PDF_LINE = 110  # characters of the A4 text pages' 6.5 pt monospace


def to_pdf(report: Report) -> bytes:
    """Text pages (facts, tables, the numbered SQL, provenance) and a page per figure, by matplotlib;
    TrueType fonts, so the text can be extracted (pdftotext)."""
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    queries = report.queries()
    lines: list[str] = [report.title, ""]
    for section in report.sections:
        if section.facts or section.tables:
            lines += [section.title, ""]
        for fact in section.facts:
            lines.append(f"{fact.label}: {value_text(fact.value)}   [SQL {queries.index(fact.sql) + 1}]")
        for table in section.tables:
            lines += ["", f"{table.title}   [SQL {queries.index(table.sql) + 1}]"] + ([table.note] if table.note else [])
            widths = [max(len(c), *(len(value_text(v)) for v in table.frame[c].to_list())) if table.frame.height else len(c)
                      for c in table.frame.columns]
            lines.append("  ".join(c.rjust(w) for c, w in zip(table.frame.columns, widths, strict=True)))
            lines += ["  ".join(value_text(v).rjust(w) for v, w in zip(row, widths, strict=True)) for row in table.frame.iter_rows()]
        lines.append("")
    lines += ["SQL", ""]
    for i, sql in enumerate(queries, 1):
        lines += [f"[{i}]", *sql.splitlines(), ""]
    lines += ["Provenance", *provenance_text(report).splitlines()]
    # a line longer than the page is wide runs off its edge (the provenance's analyzer versions did)
    lines = [part for line in lines
             for part in ([line] if len(line) <= PDF_LINE else textwrap.wrap(line, PDF_LINE, subsequent_indent="    "))]

    buffer = io.BytesIO()
    with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(buffer) as pdf:
        per_page = 70
        for start in range(0, len(lines), per_page):
            page = plt.figure(figsize=(8.27, 11.69))
            page.text(0.05, 0.97, "\n".join(lines[start:start + per_page]), family="monospace", fontsize=6.5, va="top")
            pdf.savefig(page)
            plt.close(page)
        for section in report.sections:
            for figure in section.figures:
                figure.pdf_figure.suptitle(figure.title, fontsize=9)
                pdf.savefig(figure.pdf_figure, bbox_inches="tight")
                plt.close(figure.pdf_figure)
        info = pdf.infodict()
        info["Title"] = report.title
        info["Creator"] = f"tdw {report.provenance['tdw_version']} ({report.provenance['git_sha']})"
    return buffer.getvalue()


def output_paths(stem: Path, formats: tuple[str, ...]) -> dict[str, Path]:
    return {fmt: stem.with_name(stem.name + "." + fmt) for fmt in formats}


def output_stem(out: str | Path, formats: tuple[str, ...] | None) -> tuple[Path, tuple[str, ...]]:
    """Where the report goes and in which formats. `out` is a path without suffix (every format
    asked for, all by default), or a file of one format ("fig3.html"), which is then the format:
    `--out r.html` wrote r.html.html, r.html.pdf and r.html.md."""
    out = Path(out)
    for fmt in formats or ():
        if fmt not in FORMATS:
            raise TdwError(f"--formats {fmt}: one of {', '.join(FORMATS)}")
    named = out.suffix[1:].lower()
    if named not in FORMATS:
        return out, formats or FORMATS
    if formats is not None and tuple(formats) != (named,):
        raise TdwError(f"--out {out}: names one format ({named}) and --formats asks for {','.join(formats)}; "
                       f"give --out without a suffix to write several")
    return out.with_suffix(""), (named,)


def write_report(report: Report, out: str | Path, db: str | Path, formats: tuple[str, ...] | None = None,
                 force: bool = False) -> list[Path]:
    """Write the report to `out` (see `output_stem`: every format by default, or the one its suffix
    names) and, for the Markdown, its figures in `<stem>_figures/`; each file atomically."""
    stem, formats = output_stem(out, formats)
    paths = output_paths(stem, formats)
    figures_dir = stem.with_name(stem.name + "_figures")
    for path in paths.values():
        refuse_overwriting_inputs(path, db)
    for path in [*paths.values(), figures_dir]:
        if path.exists() and not force:
            raise TdwError(f"{path}: exists; pass --force to replace it")
    written = []
    if "md" in paths:
        index = 0
        for section in report.sections:
            for figure in section.figures:
                index += 1
                atomic.write_bytes(figures_dir / f"figure_{index:02d}.png", figure.png)
        atomic.write_bytes(paths["md"], to_markdown_text(report, figures_dir.name).encode())
        written.append(paths["md"])
    if "html" in paths:
        atomic.write_bytes(paths["html"], to_html(report).encode())
        written.append(paths["html"])
    if "pdf" in paths:
        atomic.write_bytes(paths["pdf"], to_pdf(report))
        written.append(paths["pdf"])
    return written
