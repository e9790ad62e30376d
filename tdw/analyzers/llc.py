"""llc: the local learning coefficient at each checkpoint, for all weights and per component.

SGLD localized at the checkpoint (tdw/analysis/llc.py), on the training loss; components are
"all" (every trained tensor) and each of the family's "attention" and "mlp" groups (sampled alone,
the rest held at the checkpoint). Statistics per component: `llc` (mean over chains), `llc_std`
(across chains), `init_loss`, `mean_loss` (the chains' mean draw loss), `nbeta`, and `diverged`
(1 when a chain is unsound, `tdw.analysis.llc.sound_chain`: its loss left the finite numbers or
spiked, so the step is too large for that checkpoint, and its llc is NaN). Seeded by (variant seed, epoch, component), so reproducible.

Settings: 2 chains of 40 burn-in steps and 60 full-batch draws; step 0.029 / n_beta and
localization 2.06 n_beta (1.5e-4 and 400 at p=53; settings_for below; how they were chosen is in
docs/events-and-phases.md). Cost: 600 forward-backward
passes per checkpoint for a transformer (three components), so it is opt-in: `tdw analyze RUN
--analyzers llc --epochs 0:3000:250` (benchmarks/llc_cost.py measures it).
"""

import polars as pl
import torch

from tdw.analysis.analyzer import Analyzer, TableSpec
from tdw.analysis.llc import SGLDSettings, default_nbeta, estimate_llc
from tdw.analyzers import register

# Step and localization scale with n_beta (the drift is eps/2 * n_beta * grad): a fixed eps = 3e-4
# left the basin at p=113 (n_beta 464) mid-training. v2's step, 0.058 / n_beta (3e-4 at p=53, where
# it was first calibrated), still left it with all weights sampled on the published run's whole
# memorization plateau (epochs 2,500-10,000); half of it stays in, and reaches the same plateau of
# the loss trace, twice as slowly (the relaxation 2 / (eps gamma) is 33 steps): hence 40 burn-in steps.
STEP_TIMES_NBETA = 0.029
LOCALIZATION_PER_NBETA = 2.06
CHAINS, DRAWS, BURN_IN = 2, 60, 40
# the training arithmetic (tdw.training.arithmetic) whose loss the chains sample: v2's estimates
# were made with 2's float64 cross entropy, and a chain follows its rounding as a run does
LOSS_ARITHMETIC = 2


def settings_for(n_train: int) -> SGLDSettings:
    nbeta = default_nbeta(n_train)
    return SGLDSettings(step_size=STEP_TIMES_NBETA / nbeta, localization=LOCALIZATION_PER_NBETA * nbeta,
                        chains=CHAINS, draws=DRAWS, burn_in=BURN_IN)
COMPONENTS = ("attention", "mlp")  # besides "all", when the family has the group


@register
class LocalLearningCoefficient(Analyzer):
    name = "llc"
    # v2: step and localization scale with n_beta, a chain that leaves the basin flagged; v3: half
    # the step, and a chain flagged by its spikes (`sound_chain`), not by a rise of one nat
    version = 3
    description = "local learning coefficient (SGLD) for all weights, attention and MLP: llc, llc_std, losses, diverged"
    requires = "weights"
    default = False
    tables = {"llc": TableSpec({"component": pl.Utf8, "statistic": pl.Utf8})}

    def analyze(self, ctx):
        data = ctx.data
        names = sorted(n for n in ctx.weights if ctx.config.trains(n))
        groups = {n: ctx.family.parameter_group(n) for n in names}
        components = {"all": names, **{c: [n for n in names if groups[n] == c] for c in COMPONENTS
                                       if any(groups[n] == c for n in names)}}

        def loss(params, rows):
            train = data.train_idx if rows is None else data.train_idx[rows.to(data.train_idx.device)]
            return ctx.family.loss_terms(params, data.labels, train, data.test_idx, False, LOSS_ARITHMETIC)[0]

        center = {n: w.detach() for n, w in ctx.weights.items()}
        rows = []
        for index, (component, sampled) in enumerate(components.items()):
            generator = torch.Generator().manual_seed((ctx.config.seed * 1_000_003 + ctx.epoch) * 8 + index)
            with torch.enable_grad():  # the pipeline runs analyzers under no_grad
                estimate = estimate_llc(loss, center, sampled, len(data.train_idx), settings_for(len(data.train_idx)),
                                        generator)
            stats = {"llc": estimate.llc, "llc_std": estimate.llc_std, "init_loss": estimate.init_loss,
                     "mean_loss": estimate.mean_loss, "nbeta": estimate.nbeta, "diverged": float(estimate.diverged)}
            rows += [(component, statistic, value) for statistic, value in stats.items()]
        return {"llc": pl.DataFrame(rows, schema=["component", "statistic", "value"], orient="row")}
