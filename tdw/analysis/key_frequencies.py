"""Key frequencies: the few Fourier frequencies a trained model computes with.

One rule, used by the `key_frequencies` analyzer (whose table the warehouse's `key_frequencies`
view reads) and by the `progress` analyzer (restricted and excluded loss), both on the run's final
checkpoint:

    Sort the frequencies by the norm of the embedding's Fourier components (sqrt(cos^2 + sin^2)),
    largest first. Among the top half, and among frequencies with at least a quarter of the
    largest norm, find the largest ratio between a norm and the next one. If it is at least 2,
    the frequencies above it are the key frequencies; otherwise there are none.

Why a gap and not a threshold: a trained model's key frequencies stand apart from the rest as a
group (published p=113 run: 5.88, 5.79, 5.79, 5.14, 4.91, then 1.27), and the rest shrink while
weight decay cleans them up, so any fixed multiple of the median admits whatever is not cleaned
up yet (the previous rule, norm^2 > 3x the median, listed 8 on that run). At initialization the
norms are alike (largest gap 1.04 on that run) and the rule finds none. On the published run and
the demo the rule gives exactly the frequencies of the neuron clusters at the last checkpoint
(tests/test_science.py). What it misses: a group that falls off in steps under 2. A p=23 run that
grokked on an AMD EPYC ended with norms 2.83, 2.32, 1.22 (frequencies 8, 5, 4), then 0.65: ratios
of 1.22, 1.90 and 1.88, so none; the restricted loss of a run without key frequencies is log p.
Its neurons say 8 and 5 (clusters of 79 and 37 neurons, 69 and 34 of them specialized; frequency
4's 12, none). Of 20 seeds of that configuration, 14 grokked and the gap found keys in 13.

So where the embedding shows no such gap, the neurons decide (`neuron_key_frequencies`): the key
frequencies are those of the final checkpoint's clusters of specialized neurons (a neuron's best
frequency explaining at least the family's `specialized_share` of its variance over the grid, as
the warehouse's `neuron_clusters` counts them), each cluster at least a quarter of the largest,
and the largest at least 5% of the neurons. That run gets 5 and 8; a run halfway through
grokking (test accuracy 0.73) the one frequency its neurons have formed. At initialization and
in runs that have not grokked no neuron is specialized (10 p=23 runs at test accuracy 0.02-0.10,
10 initializations), so they still get none; where the gap is there (the published run, the
demo, 18 of the 20 seeds) the neurons are never asked. A run analyzed while it trains takes its
latest checkpoint as final: the published run's checkpoints from 2,500 to 14,000 taken so get
none either way (at 14,000, half its test inputs answered, 18 and 14 of its 512 neurons are
specialized, on 41 and 38: under 5%). At p=59 the gap missed two of five grokking runs midway
(ratios of 1.87 and 1.97 at test accuracy 0.98), where the neurons gave the final keys or most
of them; at their ends both rules agree.

Key frequencies are a few, by either rule: at most half of the frequencies (the gap is looked for
in the top half). The `mlp` family (Gromov's quadratic MLP) groks at p=59 with its specialized
neurons spread over all 29 frequencies, 1-6 on each, and no group standing apart: at d_mlp 64 its
largest cluster (4 neurons) reached 5% and the clusters of a quarter of it named 26 frequencies,
which the bound refuses; at the default 128 (largest clusters 5-6 of 128) none reach 5%.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from tdw.analysis.fourier import component_norms, fourier_basis, frequency_fractions_2d

if TYPE_CHECKING:
    from jaxtyping import Float, Int
    from torch import Tensor

MIN_GAP = 2.0  # the norm ratio that separates key frequencies from the rest
MIN_SHARE_OF_LARGEST = 0.25  # a key frequency's norm (or its neuron cluster) is at least this share of the largest
MIN_NEURON_SHARE = 0.05  # the largest cluster of specialized neurons holds at least this share of the neurons
MAX_SHARE_OF_FREQUENCIES = 0.5  # key frequencies are a few: at most this share of the frequencies, by either rule

# which of the two rules found a run's key frequencies (the warehouse's `key_frequencies.rule`)
EMBEDDING_GAP = "embedding_gap"
NEURON_CLUSTERS = "neuron_clusters"


def frequency_norms(embedding: Float[Tensor, "token d_model"]) -> dict[int, float]:
    """{frequency k >= 1: sqrt(cos_k^2 + sin_k^2)} of the embedding's Fourier components over its tokens."""
    p = embedding.shape[0]
    norms = component_norms(embedding.double()).pow(2)
    _, labels = fourier_basis(p)
    squared: dict[int, float] = {}
    for (k, _), n in zip(labels, norms.tolist()):
        if k > 0:
            squared[k] = squared.get(k, 0.0) + n
    return {k: v ** 0.5 for k, v in squared.items()}


def key_frequencies(embedding: Float[Tensor, "token d_model"]) -> list[int]:
    """The key frequencies of an embedding [p tokens, d_model], sorted; [] when none stand apart."""
    norms = frequency_norms(embedding)
    ranked = sorted(norms, key=lambda k: (-norms[k], k))
    largest = norms[ranked[0]] if ranked else 0.0
    best_gap, cut = 0.0, 0
    for i in range(int(len(ranked) * MAX_SHARE_OF_FREQUENCIES)):
        here, below = norms[ranked[i]], norms[ranked[i + 1]]
        if here < MIN_SHARE_OF_LARGEST * largest:
            break
        gap = here / below if below > 0 else float("inf")
        if gap > best_gap:
            best_gap, cut = gap, i + 1
    return sorted(ranked[:cut]) if best_gap >= MIN_GAP else []


def specialized_frequency(maps: Float[Tensor, "neuron a b"], specialized_share: float) -> Int[Tensor, " neuron"]:
    """Each neuron's best frequency (1..) where it explains at least `specialized_share` of the
    neuron's variance over the grid, 0 where none does: a neuron's specialization, as the warehouse's
    `neuron_clusters` counts it and a `neurons` intervention selects it."""
    best_fraction, best = frequency_fractions_2d(maps.double()).max(dim=1)  # over frequencies 1..
    return (best + 1).where(best_fraction >= specialized_share, 0)


def neuron_key_frequencies(maps: Float[Tensor, "neuron a b"], specialized_share: float) -> list[int]:
    """The key frequencies by the neurons [neuron, a, b] (each one's activation over the grid), for
    an embedding without a gap: the frequencies of the clusters of specialized neurons, each at
    least `MIN_SHARE_OF_LARGEST` of the largest, the largest at least `MIN_NEURON_SHARE` of the
    neurons, and at most `MAX_SHARE_OF_FREQUENCIES` of the frequencies; [] when there are none (the
    module's docstring says why and on what runs)."""
    frequency = specialized_frequency(maps, specialized_share)
    clusters = Counter(frequency[frequency > 0].tolist())
    largest = max(clusters.values(), default=0)
    if largest == 0 or largest < MIN_NEURON_SHARE * maps.shape[0]:
        return []
    keys = sorted(k for k, neurons in clusters.items() if neurons >= MIN_SHARE_OF_LARGEST * largest)
    return keys if len(keys) <= int(maps.shape[1] // 2 * MAX_SHARE_OF_FREQUENCIES) else []  # p // 2 frequencies
