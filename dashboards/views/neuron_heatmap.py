"""The selected neuron's activation over all (a, b) pairs at the epoch (REQ_005): a specialized
neuron shows the stripes of cos(w(a+b))."""

from dashboards.views import view
from dashboards.views._common import no_data, pair_image


def caption(store, variant: str, epoch: int, neuron: int) -> str:
    best = store.neuron_best(variant, epoch)
    row = best.filter(best["neuron"] == neuron).to_dicts()
    detail = f", best frequency {row[0]['frequency']} explains {row[0]['value']:.0%}" if row else ""
    return f"Neuron {neuron} at epoch {epoch}{detail}"


@view("neuron_heatmap", "Neuron activation", group="Neurons", needs=("epoch", "neuron"), order=34, caption=caption)
def neuron_heatmap(store, variant: str, epoch: int, neuron: int):
    grid = store.neuron_map(variant, epoch, neuron)
    title = f"Neuron {neuron} at epoch {epoch}"
    if grid is None:
        return no_data(title)
    return pair_image(grid, title, "activation", "RdBu_r")
