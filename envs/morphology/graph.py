"""Structural encodings of a body tree, usable as attention biases (all rotation-invariant, constant per body)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

__all__ = ["MAX_TRAVERSAL_RANK", "published_encodings", "structural_encodings"]


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


MAX_TRAVERSAL_RANK = 15
"""Rows of each published traversal-embedding table (ranks 0..14; the largest body has 14 limbs)."""


def _lcrs_lists(children: list[list[int]]) -> list[list[int]]:
    """Left-child right-sibling lists as the published encodings build them: node -> [first child] + [next sibling].

    A node without children but with a next sibling gets a one-entry list, which the in-order walk then treats as
    its left child (as published).
    """
    lists: list[list[int]] = [kids[:1] for kids in children]
    for kids in children:
        for previous, following in itertools.pairwise(kids):
            lists[previous].append(following)
    return lists


def published_encodings(parents: Sequence[int]) -> dict[str, np.ndarray]:
    """The graph encodings of the published 3D-SGRL code (REFERENCES §1; reviewed in ``sgrl-set-layers.md`` §5).

    * ``traversal_ranks`` ``(n, 3)`` int64: each limb's rank in three walks of the tree — pre-order, in-order of
      the left-child right-sibling (LCRS) binary tree, post-order of the LCRS lists. The SET's ``paper`` preset
      looks them up in learned embedding tables.
    * ``relation`` ``(n, n, 3)`` float64: personalized PageRank with damping 0.9 over the graph with self-loops
      (row ``i`` starts at ``i``), the normalized Laplacian, and the hop distance divided by ``n`` — the inputs of
      the first layer's attention bias.

    Our default encodings (:func:`structural_encodings`) differ: traversal floats, raw hops, restart 0.15 without
    self-loops.

    >>> enc = published_encodings([-1, 0, 1, 0, 3, 0])
    >>> enc["traversal_ranks"].T.tolist()
    [[0, 1, 2, 3, 4, 5], [5, 1, 0, 3, 2, 4], [5, 4, 0, 3, 1, 2]]
    """
    base = structural_encodings(parents)
    n = len(parents)
    if n > MAX_TRAVERSAL_RANK:
        raise ValueError(f"published_encodings: at most {MAX_TRAVERSAL_RANK} limbs, got {n}")
    children: list[list[int]] = [[] for _ in range(n)]
    for i, p in enumerate(parents[1:], start=1):
        children[int(p)].append(i)
    lists = _lcrs_lists(children)
    in_order: list[int] = []
    post_order: list[int] = []

    def walk_in(i: int) -> None:
        if lists[i]:
            walk_in(lists[i][0])
        in_order.append(i)
        if len(lists[i]) == 2:
            walk_in(lists[i][1])

    def walk_post(i: int) -> None:
        for j in lists[i]:
            walk_post(j)
        post_order.append(i)

    walk_in(0)
    walk_post(0)
    ranks = np.zeros((n, 3), dtype=np.int64)
    ranks[:, 0] = np.arange(n)
    ranks[in_order, 1] = np.arange(n)
    ranks[post_order, 2] = np.arange(n)
    adj = (base["graph_distance"] == 1.0).astype(np.float64)
    with_loops = adj + np.eye(n)
    transition = (with_loops / with_loops.sum(axis=1, keepdims=True)).T  # column-stochastic
    ppr = 0.1 * np.linalg.inv(np.eye(n) - 0.9 * transition).T  # row i: the walk restarting at i
    relation = np.stack([ppr, base["laplacian"], base["graph_distance"] / n], axis=-1)
    return {"traversal_ranks": ranks, "relation": relation}
