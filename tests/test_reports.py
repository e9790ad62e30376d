"""Reports, saved views and the dashboard's URL state (dashboards/reports.py, saved_views.py,
pages/reports.py): a report's numbers equal the SQL views' (in the HTML and in the PDF's text, read
by pdftotext); the HTML opens in chromium with the network cut and fetches nothing; a comparison
shows only the columns that differ; a saved view goes file -> catalog -> dashboard -> file and
`tdw report NAME`; and the URL carries the state both ways, the back button included."""

from __future__ import annotations

import re
import subprocess
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dashboards.reports import Warehouse, variant_facts
from dashboards.saved_views import SavedView, Selection
from tdw.cli import main
from tdw.warehouse.export import cell
from tdw.warehouse.query import query
from tests.conftest import tiny_config
from tests.dashboard_harness import browser_page, poll, served


class Cells(HTMLParser):
    """The report's facts (data-fact) and tables (data-table) as text."""

    def __init__(self) -> None:
        super().__init__()
        self.facts: dict[str, str] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self.fact: str | None = None
        self.table: str | None = None
        self.in_cell = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "td" and "data-fact" in attrs:
            self.fact = attrs["data-fact"]
            self.facts[self.fact] = ""
        if tag == "table" and "data-table" in attrs:
            self.table = attrs["data-table"]
            self.tables[self.table] = []
        if tag == "tr" and self.table:
            self.tables[self.table].append([])
        if tag in ("td", "th") and self.table:
            self.tables[self.table][-1].append("")
            self.in_cell = True

    def handle_endtag(self, tag):
        if tag == "td":
            self.fact, self.in_cell = None, False
        if tag == "table":
            self.table = None

    def handle_data(self, data):
        if self.fact:
            self.facts[self.fact] += data
        elif self.table and self.in_cell:
            self.tables[self.table][-1][-1] += data


def text(value) -> str:
    return "n/a" if value is None else "none" if value == [] else cell(value)


def parsed(path: Path) -> Cells:
    cells = Cells()
    cells.feed(path.read_text())
    return cells


@pytest.fixture(scope="module")
def variant_report(study, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reports") / "p13_seed3"
    assert main(["report", "p13_seed3", "--db", str(study), "--out", str(out)]) == 0
    return out


def test_a_variant_report_states_the_sql_views_numbers_in_html_pdf_and_markdown(variant_report, study):
    warehouse = Warehouse(study)
    try:
        facts = variant_facts(warehouse, "p13_seed3")
    finally:
        warehouse.close()
    html = parsed(variant_report.with_suffix(".html"))
    summary = query("select * from variant_summary where variant = 'p13_seed3'", study).to_dicts()[0]
    turn = query("select * from grokking_turn where variant = 'p13_seed3'", study).to_dicts()[0]
    assert html.facts["memorization_epoch"] == text(turn["memorization_epoch"])
    assert html.facts["turn_epoch"] == text(turn["turn_epoch"])
    assert html.facts["specialized_fraction"] == text(summary["specialized_fraction"])
    assert html.facts["pr_w_in_min"] == text(summary["pr_w_in_min"])
    assert html.facts["final_test_loss"] == text(summary["final_test_loss"])
    assert html.facts["key_frequencies"] == text(summary["key_frequencies"])
    assert html.facts["key_frequency_rule"] == text(summary["key_frequency_rule"])
    assert (summary["key_frequency_rule"] is None) == (summary["key_frequency_count"] == 0)
    assert {f.name for f in facts} == set(html.facts)
    # each fact's SQL, run as printed, gives the number printed
    page = variant_report.with_suffix(".html").read_text()
    for fact in facts:
        assert escape(fact.sql) in page
        rows = query(fact.sql, study).to_dicts()
        assert html.facts[fact.name] == text(rows[0][fact.name] if rows else None)
    epochs = html.tables["epochs"]
    expected = query("select epoch, loss from losses where variant = 'p13_seed3' and split = 'test'", study)
    by_epoch = dict(expected.iter_rows())
    assert epochs[0] == ["epoch", "train_loss", "test_loss", "test_accuracy", "specialized_fraction", "pr_w_in"]
    assert epochs[-1][0] == text(max(by_epoch))  # the last checkpoint is always a row
    for row in epochs[1:]:
        assert row[2] == text(by_epoch[int(row[0])])
    pdf = subprocess.run(["pdftotext", "-layout", str(variant_report.with_suffix(".pdf")), "-"], capture_output=True,
                         text=True, check=True).stdout
    assert f"memorization (train loss settles): {text(turn['memorization_epoch'])}" in pdf
    assert f"final test loss: {text(summary['final_test_loss'])}" in pdf
    assert "from variant_summary where variant = 'p13_seed3'" in pdf and "tdw 0" in pdf
    assert "unembedding_fourier v1" in pdf  # the provenance's last analyzer: wrapped, not run off the page
    markdown = variant_report.with_suffix(".md").read_text()
    assert f"| final test loss | {text(summary['final_test_loss'])} | [3] |" in markdown
    figures = re.findall(r"\]\((p13_seed3_figures/figure_\d+\.png)\)", markdown)
    assert len(figures) == 7 and all((variant_report.parent / f).stat().st_size > 5000 for f in figures)
    assert "Graduation map: p13_seed3" in markdown  # the per-input face of the run, beside the aggregate ones
    assert "neuron_freq v" in page  # provenance: the analyzer versions


def test_the_html_report_is_self_contained(variant_report):
    requested = []
    with browser_page() as page:
        def cut(route):
            requested.append(route.request.url)
            route.abort() if not route.request.url.startswith("file://") else route.continue_()

        page.route("**/*", cut)
        page.goto(variant_report.with_suffix(".html").as_uri())
        loaded = page.evaluate("() => Array.from(document.images).map(i => i.complete && i.naturalWidth > 100)")
    assert loaded == [True] * 7
    assert all(url.startswith("file://") for url in requested) and len(requested) == 1


def test_a_comparison_shows_only_the_columns_that_differ_unless_asked(study, tmp_path):
    out = tmp_path / "compare"
    assert main(["report", "--compare", "p13_seed3,p13_seed4", "--db", str(study), "--out", str(out), "--formats", "html"]) == 0
    table = parsed(out.with_suffix(".html")).tables["variant_summary"]
    header = table[0]
    assert "seed" in header and "p" not in header and "family" not in header  # both p=13 transformers
    summary = query("select * from variant_summary where variant in ('p13_seed3', 'p13_seed4') order by variant", study)
    for column in summary.columns:
        differs = len({repr(v) for v in summary[column].to_list()}) > 1
        assert (column in header) == (differs or column == "variant"), column
    assert [row[header.index("seed")] for row in table[1:]] == ["3", "4"]
    assert main(["report", "--compare", "p13_seed3,p13_seed4", "--db", str(study), "--out", str(out), "--formats", "html",
                 "--all-columns", "--force"]) == 0
    assert parsed(out.with_suffix(".html")).tables["variant_summary"][0] == summary.columns


def test_a_comparison_keeps_the_named_order_and_shares_axes_only_across_runs_of_one_length(study, tmp_path):
    """The summary's rows come in the order the variants were named. The loss small multiples share
    one scale when the runs are as long (the study's seeds, 200 epochs each); beside a 40-epoch
    run each panel has its own, or the short run was a line against the left edge."""
    import shutil

    from dashboards.reports import comparison_report
    from tdw.training.trainer import train

    def panels_right_edges(report):
        multiples = report.sections[1].figures[-1]
        return multiples.title, [ax.get_xlim()[1] for ax in multiples.pdf_figure.axes if ax.get_title()]

    same_length = comparison_report(study, ["p13_seed4", "p13_seed3"])
    title, edges = panels_right_edges(same_length)
    assert title == "Loss curves, one per variant" and len(edges) == 2 and len(set(edges)) == 1
    assert {f.pdf_figure.axes[0].get_xscale() for f in same_length.sections[1].figures[:-1]} == {"linear"}
    results = tmp_path / "results"
    shutil.copytree(study.parent.parent / "results" / "modular_addition" / "p13_seed3",
                    results / "modular_addition" / "p13_seed3")
    train(tiny_config(seed=6, num_epochs=40, checkpoint_epochs=(0, 20)), results, device="cpu", progress=False)
    db = tmp_path / "warehouse" / "tdw.duckdb"
    assert main(["index", "--results", str(results), "--db", str(db)]) == 0
    mixed = comparison_report(db, ["p13_seed6", "p13_seed3"])
    table = mixed.sections[0].tables[0]
    assert table.frame["variant"].to_list() == ["p13_seed6", "p13_seed3"]
    assert "list_position(['p13_seed6', 'p13_seed3'], variant)" in table.sql
    title, edges = panels_right_edges(mixed)
    assert title == "Loss curves, one per variant, each on its own axes (the runs' lengths differ)"
    assert edges[0] < 50 and edges[1] >= 199  # the 40-epoch run's panel, then the 200-epoch run's
    # the overlays of runs of other lengths: a log epoch axis; the test losses (the 40-epoch run has
    # nothing else: it was not analyzed) from epoch 1, each run to its own end
    overlays = mixed.sections[1].figures[:-1]
    for figure in overlays:
        assert figure.title.endswith(", on a log epoch axis (the runs' lengths differ)"), figure.title
        assert figure.pdf_figure.axes[0].get_xscale() == "log"
    ends = sorted((line.get_xdata().min(), line.get_xdata().max()) for line in overlays[0].pdf_figure.axes[0].get_lines())
    assert ends == [(1, 39), (1, 199)], ends


def test_a_comparison_of_variants_without_a_turn_draws_its_overlays_by_epoch(study):
    """No variant of the study has turned: aligned at the turn, every overlay was an empty "no variant
    has this measure and a turn"; they are drawn by epoch instead, and say so. The loss small
    multiples carry one legend, on the last panel."""
    from dashboards.reports import OVERLAYS, comparison_report

    variants = ["p13_seed3", "p13_seed4"]
    assert query("select count(turn_epoch) as n from grokking_turn", study)["n"][0] == 0
    figures = comparison_report(study, variants).sections[1].figures
    overlays, multiples = figures[:-1], figures[-1]
    assert [f.title for f in overlays] == [f"{m}, by epoch (no variant has a turn to align at)" for m in OVERLAYS]
    for figure in overlays:
        assert len(figure.pdf_figure.axes[0].get_lines()) == len(variants), figure.title
    panels = [axes for axes in multiples.pdf_figure.axes if axes.get_title()]
    assert [axes.get_title() for axes in panels] == variants
    assert [axes.get_legend() is not None for axes in panels] == [False, True]


def test_bad_report_requests_get_one_line_and_write_nothing(study, tmp_path, capsys):
    for args, says in ((["report", "p99_seed1"], "variant p99_seed1: not in the warehouse"),
                       (["report", "--compare", "p13_seed3"], "at least two variants"),
                       (["report", "p13_seed3", "--formats", "docx"], "--formats docx"),
                       (["report", "p13_seed3", "--formats", "docx", "--out", str(tmp_path / "r.html")], "--formats docx"),
                       (["report", "p13_seed3", "--formats", "pdf", "--out", str(tmp_path / "r.html")],
                        "names one format (html) and --formats asks for pdf"),
                       (["report"], "name a VARIANT")):
        capsys.readouterr()
        assert main([*args, "--db", str(study), *([] if "--out" in args else ["--out", str(tmp_path / "r")])]) == 2
        err = capsys.readouterr().err.strip()
        assert says in err and err.count("\n") == 0
    assert list(tmp_path.iterdir()) == []


def test_an_out_path_with_a_suffix_is_that_one_file(study, tmp_path, capsys):
    """`--out fig.html` writes fig.html (not fig.html.html, .pdf and .md); `--out notes.md` the
    Markdown and its figures; the same report as the stem form gives in that format."""
    assert main(["report", "p13_seed3", "--db", str(study), "--out", str(tmp_path / "fig.html")]) == 0
    assert main(["report", "p13_seed3", "--db", str(study), "--out", str(tmp_path / "notes.MD")]) == 0
    assert main(["report", "p13_seed3", "--db", str(study), "--out", str(tmp_path / "stem"), "--formats", "html"]) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fig.html", "notes.md", "notes_figures", "stem.html"]
    one, stem = parsed(tmp_path / "fig.html"), parsed(tmp_path / "stem.html")
    assert one.facts and (one.facts, one.tables) == (stem.facts, stem.tables)
    assert "wrote " + str(tmp_path / "fig.html") in capsys.readouterr().err


def test_a_saved_view_round_trips_file_catalog_dashboard_file_and_reports(study, tmp_path, capsys):
    db = tmp_path / "warehouse" / "tdw.duckdb"
    db.parent.mkdir()
    db.write_bytes(study.read_bytes())  # a copy: the saved views live beside the warehouse
    assert main(["view", "list", "--db", str(db)]) == 0
    assert capsys.readouterr().out.startswith("no saved views")
    toml = tmp_path / "paper_fig3.toml"
    toml.write_text('name = "fig3"\ntitle = "Seed 3 at two epochs"\nviews = ["loss_curves", "neuron_heatmap", '
                    '"attention_map", "pair_trace", "pair_logit_lens"]\nvariants = ["p13_seed3"]\nepochs = [100, 175]\n'
                    'neurons = [2]\nheads = [1]\npairs = ["4+9", "2 + 3"]\n')
    assert main(["view", "add", str(toml), "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["view", "list", "--db", str(db)]) == 0
    assert capsys.readouterr().out.split()[:3] == ["fig3", "5", "views,"]
    assert main(["view", "show", "fig3", "--db", str(db)]) == 0
    shown = capsys.readouterr().out
    assert 'epochs = [100, 175]' in shown and 'heads = [1]' in shown and 'pairs = ["4+9", "2 + 3"]' in shown
    bad = tmp_path / "bad.toml"
    for body, says in [('views = ["nope"]', "unknown view 'nope'"), ('views = ["pair_trace"]\npairs = ["4-9"]', "'4-9' is not an input"),
                       ('views = ["attention_map"]\nheads = [-1]', "heads must be whole numbers")]:
        bad.write_text(f'name = "x"\n{body}\nvariants = ["p13_seed3"]\n')
        assert main(["view", "add", str(bad), "--db", str(db)]) == 2
        assert says in capsys.readouterr().err
    with served(db) as url, browser_page() as page:
        page.goto(url + "?page=Reports&report=fig3")
        page.locator(".report-figure").first.wait_for(timeout=60_000)
        # loss curves once, the neuron heatmap and head 1's attention at each pinned epoch, the margin of
        # 4+9 with 2+3 beside it once, the logit lens of each input
        assert page.locator(".report-figure").count() == 8
        assert page.locator(".report-epochs input").input_value() == "100,175"
        assert page.locator(".report-pairs input").input_value() == "4+9,2 + 3"
        # edit it in the dashboard: a note and one epoch fewer, saved over the same name
        page.locator(".report-epochs input").fill("175")
        page.locator(".report-notes textarea").fill("the heatmap sharpens")
        page.locator(".report-save button").click()
        page.locator(".report-message").get_by_text("Saved fig3").wait_for(timeout=30_000)
        poll(lambda: page.locator(".report-figure").count() == 6, 30, page, "the edited view redrawn at one epoch")
        # a new one made from the current selection, named in the form; the URL follows it
        page.locator(".report-name input").fill("fromdash")
        page.locator(".report-save button").click()
        page.wait_for_function("() => location.search.includes('report=fromdash')", timeout=30_000)
        link = page.url
        page.goto(link)  # reopened from its URL
        page.locator(".report-figure").first.wait_for(timeout=60_000)
        assert page.locator(".report-name input").input_value() == "fromdash"
    saved = (db.parent / "views" / "fig3.toml").read_text()
    assert "epochs = [175]" in saved and 'notes = "the heatmap sharpens"' in saved
    assert (db.parent / "views" / "fromdash.toml").is_file()
    out = tmp_path / "fig3_report"
    assert main(["report", "fig3", "--db", str(db), "--out", str(out), "--formats", "html,md"]) == 0
    html = out.with_suffix(".html").read_text()
    assert "Neuron activation: p13_seed3 at epoch 175, neuron 2" in html and "at epoch 100" not in html
    assert "Attention: p13_seed3 at epoch 175, head 1" in html
    assert "margin: p13_seed3, input 4+9 and 2+3" in html  # one figure, the second input beside the first
    assert all(f"Logit lens of the traced input: p13_seed3, input {pair}<" in html for pair in ("4+9", "2+3"))
    assert main(["view", "remove", "fromdash", "--db", str(db)]) == 0
    assert not (db.parent / "views" / "fromdash.toml").exists()


def test_a_saved_view_draws_each_view_at_what_it_needs_of_the_pinned_selection():
    saved = SavedView("v", ["x"], ["p13_seed3"], epochs=[100, 999], neurons=[2, 5], heads=[1], pairs=["4+9", "2 + 3"])
    checkpoints = [0, 100, 175]
    assert saved.selections((), True, checkpoints) == [Selection(None)]  # over epochs: once, pins unused
    assert saved.selections(("epoch",), False, checkpoints) == [Selection(100)]  # 999 is no checkpoint of it
    assert saved.selections(("epoch", "neuron"), False, checkpoints) == [Selection(100, neuron=2), Selection(100, neuron=5)]
    assert saved.selections(("epoch", "head"), False, checkpoints) == [Selection(100, head=1)]
    assert saved.selections(("pair", "pinned"), True, checkpoints) == [Selection(None, pair="4+9", pinned=("2+3",))]
    assert saved.selections(("pair",), True, checkpoints) == [Selection(None, pair="4+9"), Selection(None, pair="2+3")]
    bare = SavedView("b", ["x"], ["p13_seed3"])  # nothing pinned: the last checkpoint, neuron, head and input 0
    assert bare.selections(("epoch", "neuron", "head"), False, checkpoints) == [Selection(175)]
    assert bare.selections(("pair", "pinned"), True, checkpoints) == [Selection(None, pair="0+0")]


def test_a_saved_view_with_log_epochs_draws_its_views_over_epochs_on_log_epochs(study):
    from dashboards.reports import saved_view_report
    from tdw.errors import TdwError

    saved = SavedView.from_toml('name = "early"\nviews = ["loss_curves", "neuron_heatmap"]\nvariants = ["p13_seed3"]\n'
                                'log_epochs = true\n')
    assert saved.log_epochs and SavedView.from_toml(saved.to_toml()) == saved  # its TOML round-trips
    report = saved_view_report(study, saved)
    loss, heatmap = report.sections[0].figures
    assert loss.pdf_figure.axes[0].get_xscale() == "log"
    assert heatmap.pdf_figure.axes[0].get_xscale() == "linear"  # a map at an epoch is not drawn over epochs
    with pytest.raises(TdwError, match="log_epochs must be true or false"):
        SavedView.from_toml('name = "x"\nviews = ["loss_curves"]\nvariants = ["p13_seed3"]\nlog_epochs = "yes"\n')


def test_the_url_carries_the_state_both_ways_and_the_back_button_walks_it(app_url):
    def value(css: str) -> str:
        return page.locator(css).input_value()

    def open_section(group: str) -> bool:  # a closed card hides its content: only its header is left
        return page.locator(f".section-{group}").first.evaluate("e => e.offsetHeight > 100")

    with browser_page() as page:
        page.goto(app_url + "?page=Variant&variant=p13_seed4&epoch=100&neuron=5&open_sections=%5B%22Training%22%2C%22Attention%22%5D")
        page.locator(".epoch-input input").wait_for(timeout=60_000)
        poll(lambda: value(".epoch-input input") == "100", 30, page, "the URL's epoch")
        assert value(".neuron-input input") == "5" and value(".variant-select select") == "p13_seed4"
        poll(lambda: open_section("attention"), 30, page, "the URL's open sections")
        assert open_section("training") and not open_section("neurons")  # Neurons is open by default
        # a change goes into the URL
        page.locator(".epoch-input input").fill("150")
        page.locator(".epoch-input input").press("Enter")
        page.wait_for_function("() => location.search.includes('epoch=150')", timeout=30_000)
        page.locator(".section-neurons .card-header").first.click()
        page.wait_for_function("() => decodeURIComponent(location.search).includes('Neurons')", timeout=30_000)
        page.locator(".page-nav").get_by_text("Compare", exact=True).click()
        page.wait_for_function("() => location.search.includes('page=Compare')", timeout=30_000)
        # back: the previous URL, and the app rebuilt from it
        page.go_back()
        page.wait_for_function("() => location.search.includes('page=Variant') && location.search.includes('epoch=150')",
                               timeout=30_000)
        page.locator(".epoch-input input").wait_for(timeout=60_000)
        poll(lambda: value(".epoch-input input") == "150", 60, page, "the epoch after going back")
        assert value(".neuron-input input") == "5"
        poll(lambda: open_section("neurons"), 30, page, "the section opened before going back")
