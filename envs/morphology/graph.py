"""Structural encodings of a body tree, usable as attention biases (all rotation-invariant, constant per body)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["structural_encodings"]


def structural_encodings(parents: Sequence[int], restart: float = 0.15) -> dict[str, np.ndarray]:
    """Graph features of a tree given by parent indices in pre-order (the root's parent is -1).

    Args:
        parents: ``parents[i]`` is the index of limb ``i``'s parent (``< i``), -1 for the root.
        restart: Restart probability of the personalized PageRank.

    Returns:
        ``parents`` ``(n,)``; ``graph_distance`` ``(n, n)`` hop counts; ``ppr`` ``(n, n)`` personalized
        PageRank (row ``i`` restarts at ``i``); ``laplacian`` ``(n, n)`` normalized Laplacian
        ``I - D^-1/2 A D^-1/2``; ``traversal`` ``(n, 3)`` pre-order rank, post-order rank and depth divided
        by ``max(n - 1, 1)``. All float64.

    >>> enc = structural_encodings([-1, 0, 1])
    >>> enc["graph_distance"][0].tolist()
    [0.0, 1.0, 2.0]
    """
    parents = [int(p) for p in parents]
    n = len(parents)
    for i, p in enumerate(parents):
        if (i == 0) != (p == -1) or p >= i:
            raise ValueError(
                f"parents must list a tree in pre-order (root first, parent index < child): {parents}"
            )
    adj = np.zeros((n, n))
    for i, p in enumerate(parents[1:], start=1):
        adj[i, p] = adj[p, i] = 1.0
    dist = np.full((n, n), np.inf)
    np.fill_diagonal(dist, 0.0)
    dist[adj > 0] = 1.0
    for k in range(n):  # Floyd-Warshall, n <= a few dozen
        dist = np.minimum(dist, dist[:, k : k + 1] + dist[k : k + 1, :])
    degree = adj.sum(axis=1)
    inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-12)), 0.0)
    laplacian = np.eye(n) - inv_sqrt[:, None] * adj * inv_sqrt[None, :]
    transition = adj / np.maximum(degree, 1.0)[:, None]
    ppr = restart * np.linalg.inv(np.eye(n) - (1.0 - restart) * transition)
    children: list[list[int]] = [[] for _ in range(n)]
    for i, p in enumerate(parents[1:], start=1):
        children[p].append(i)
    post: list[int] = []

    def visit(i: int) -> None:
        for c in children[i]:
            visit(c)
        post.append(i)

    visit(0)
    depth = np.zeros(n)
    for i, p in enumerate(parents[1:], start=1):
        depth[i] = depth[p] + 1
    scale = max(n - 1, 1)
    traversal = np.zeros((n, 3))
    traversal[:, 0] = np.arange(n) / scale
    traversal[post, 1] = np.arange(n) / scale
    traversal[:, 2] = depth / scale
    return {
        "parents": np.asarray(parents, dtype=np.float64),
        "graph_distance": dist,
        "ppr": np.clip(ppr, 0.0, 1.0),
        "laplacian": np.clip(laplacian, -1.0, 1.0),
        "traversal": traversal,
    }
