"""frequency_lifecycle (sql/30_marts/frequency_lifecycle.sql) on planted neuron clusters with
hand-written answers (`planted_sql`: the view's own SQL over planted tables)."""

from __future__ import annotations

from planted_sql import run_model

CLUSTERS = "variant varchar, epoch integer, frequency smallint, neurons bigint, specialized_neurons bigint"


def test_a_cluster_formed_and_gone_is_lost_and_one_held_at_the_end_is_kept():
    """Run v has 100 neurons (a cluster: 5 specialized). Frequency 3 forms a cluster of 20 at epoch
    100, keeps it at 200 (the first of the tied peaks is the peak) and falls to 1: lost. Frequency 7
    grows past 5 at 200 and ends at 30, a key frequency: kept. Frequency 11 holds exactly 5 at 100
    and has no neuron at the end: lost, final 0. Frequency 9 never reaches 5: no row. Run w, 20
    neurons and one checkpoint, holds a cluster of one neuron there: kept."""
    rows = [("v", 0, 3, 30, 0), ("v", 0, 7, 30, 0), ("v", 0, 9, 40, 4),
            ("v", 100, 3, 30, 20), ("v", 100, 7, 30, 4), ("v", 100, 11, 10, 5), ("v", 100, 9, 30, 2),
            ("v", 200, 3, 30, 20), ("v", 200, 7, 30, 6), ("v", 200, 9, 40, 0),
            ("v", 300, 3, 10, 1), ("v", 300, 7, 50, 30), ("v", 300, 9, 40, 3),
            ("w", 0, 2, 20, 1)]
    lifecycle = run_model("frequency_lifecycle", {
        "neuron_clusters": (CLUSTERS, rows),
        "key_frequencies": ("variant varchar, frequency smallint", [("v", 7)]),
    })
    assert lifecycle.rows() == [
        # variant, frequency, first_epoch, last_epoch, peak_epoch, peak_neurons, final_neurons, status, is_key
        ("v", 3, 100, 200, 100, 20, 1, "lost", False),
        ("v", 7, 200, 300, 300, 30, 30, "kept", True),
        ("v", 11, 100, 100, 100, 5, 0, "lost", False),
        ("w", 2, 0, 0, 0, 1, 1, "kept", False),
    ]
