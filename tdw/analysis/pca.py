"""PCA of parameter trajectories: few points (checkpoints), very many dimensions (parameters).

Both the `trajectory` analyzer (one run's checkpoints) and shared trajectory bases (several runs'
checkpoints pooled) fit PC1..PC3 on N points of D dimensions with N in the hundreds and D in the
hundreds of thousands. An SVD of the [N, D] matrix spends its time on the D-long right singular
vectors; the [N, N] Gram matrix of the centred points has the same eigenvalues (the squared
singular values) and its eigenvectors are the left singular vectors, so the coordinates come out
of an eigendecomposition of an N x N matrix. The Gram matrix is accumulated in float64 over blocks
of parameters, so float32 points are never copied whole here: on the published run's 118
checkpoints x 227k parameters its five groups take 0.61 s against 4.15 s for `torch.linalg.svd`
of the centred points (6.8x, `benchmarks/trajectory_pca.py`), with no SVD workspace.

Sign convention: each axis points so that its largest-magnitude loading is positive, so a refit
on the same points gives the same coordinates, and mirrored points give mirrored coordinates.
"""

from __future__ import annotations

from tdw.deferred_imports import torch

BLOCK = 1 << 16  # parameters per Gram-matrix block


def pooled_pca(blocks: list[torch.Tensor], n_components: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """PCA of the rows of all `blocks` together ([n_i, D] each, centred on their pooled mean):
    each block's coordinates [n_i, k] (float64) and the explained-variance ratios [k], k =
    min(n_components, sum n_i). A run with more checkpoints weighs more in a pooled fit."""
    total = sum(b.shape[0] for b in blocks)
    dims = blocks[0].shape[1]
    mean = sum(b.double().sum(0) for b in blocks) / total

    def centred(start: int) -> torch.Tensor:
        return torch.cat([b[:, start:start + BLOCK].double() for b in blocks]) - mean[start:start + BLOCK]

    gram = torch.zeros(total, total, dtype=torch.float64)
    for start in range(0, dims, BLOCK):
        part = centred(start)
        gram += part @ part.T
    eigenvalues, vectors = torch.linalg.eigh(gram)
    variances = eigenvalues.flip(0).clamp_min(0)  # squared singular values, largest first
    vectors = vectors.flip(1)
    k = min(n_components, total)
    coords = vectors[:, :k] * variances[:k].sqrt()  # = centred points @ axes
    # the axes themselves only to fix signs: axis_j * s_j = centred^T u_j, its largest loading
    signs = torch.ones(k, dtype=torch.float64)
    best = torch.zeros(k, dtype=torch.float64)
    for start in range(0, dims, BLOCK):
        loadings = centred(start).T @ vectors[:, :k]  # [block, k]
        values = loadings[loadings.abs().argmax(0), torch.arange(k)]
        better = values.abs() > best
        best = torch.where(better, values.abs(), best)
        signs = torch.where(better, torch.sign(values), signs)
    signs[signs == 0] = 1
    ratio = variances[:k] / variances.sum().clamp_min(1e-300)
    return list((coords * signs).split([b.shape[0] for b in blocks])), ratio


def pca(points: torch.Tensor, n_components: int) -> tuple[torch.Tensor, torch.Tensor]:
    """points [N, D] -> (coordinates [N, k] float64, explained-variance ratios [k])."""
    (coords,), ratio = pooled_pca([points], n_components)
    return coords, ratio
