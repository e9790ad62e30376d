"""The trajectory in the first three principal components. Bokeh has no 3D, so this view is
drawn by the matplotlib backend, live and in exports alike."""

import holoviews as hv

from dashboards.views import view
from dashboards.views._common import no_data


@view("trajectory_3d", "Trajectory 3D", group="Trajectory 3D", needs=("epoch",), order=68,
      backend="matplotlib", collapsed=True)
def trajectory_3d(store, variant: str, epoch: int):
    frame = store.trajectory(variant)
    title = f"PC1 / PC2 / PC3, epoch {epoch}"
    if frame.is_empty() or frame["pc3"].null_count() == frame.height:
        return no_data(title)
    points = hv.Scatter3D(frame.select("pc1", "pc2", "pc3", "epoch").to_numpy(), ["pc1", "pc2", "pc3"], ["epoch"]).opts(
        color="epoch", cmap="viridis", backend="matplotlib")
    here = frame.filter(frame["epoch"] == epoch)
    marker = hv.Scatter3D(here.select("pc1", "pc2", "pc3").to_numpy(), ["pc1", "pc2", "pc3"]).opts(
        color="red", s=60, backend="matplotlib")
    return (points * marker).opts(title=title, backend="matplotlib")
