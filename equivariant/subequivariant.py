"""Subequivariant vector–scalar layers (after SGNN, Han et al. 2022, and SET, Chen et al. 2023).

Every token (a limb, a node) carries a **vector stream** ``(..., 3, C)`` — ``C`` world-frame 3-vectors — and a
**scalar stream** ``(..., S)``. A layer may also receive **fixed vectors** ``(..., 3, F)`` such as gravity ``g``
and a target direction ``d``. Each layer is equivariant to O(3) acting jointly on vectors and fixed vectors and
leaves scalars invariant; holding ``g`` fixed then makes it equivariant to the subgroup O_g(3) that fixes
gravity (rotations about gravity, reflections in vertical planes) — "subequivariance".

Rules that make this exact: vectors are only ever combined linearly with coefficients that are invariant
(learned constants or functions of Gram matrices and scalars); they never pass a bias or a pointwise
nonlinearity. Invariants are inner products, normalised by ``(||Gram||_F + 1)`` for scale stability.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn

__all__ = [
    "GramMLP",
    "GramMLPAttention",
    "InvariantMatrixMixing",
    "SubequivariantAttention",
    "SubequivariantBlock",
    "gram_invariants",
]


def _check_streams(name: str, vectors: Tensor, scalars: Tensor, channels: int, scalar_channels: int) -> None:
    if vectors.dim() < 2 or vectors.shape[-2] != 3 or vectors.shape[-1] != channels:
        raise ValueError(
            f"{name}: vectors must have shape (..., 3, {channels}) (3-vectors on dim -2, channels last), "
            f"got {tuple(vectors.shape)}"
        )
    if scalars.shape[-1] != scalar_channels or scalars.shape[:-1] != vectors.shape[:-2]:
        raise ValueError(
            f"{name}: scalars must have shape {(*vectors.shape[:-2], scalar_channels)} to match the vectors, "
            f"got {tuple(scalars.shape)}"
        )


def _append_fixed(vectors: Tensor, fixed: Tensor | None, num_fixed: int, name: str) -> Tensor:
    if num_fixed == 0:
        if fixed is not None and fixed.shape[-1] != 0:
            raise ValueError(f"{name}: built with num_fixed=0 but fixed vectors were given")
        return vectors
    if fixed is None or fixed.shape[-2:] != (3, num_fixed):
        got = None if fixed is None else tuple(fixed.shape)
        raise ValueError(
            f"{name}: expected fixed vectors of shape (..., 3, {num_fixed}) (e.g. gravity), got {got}"
        )
    fixed = fixed.to(vectors.dtype).expand(*vectors.shape[:-2], 3, num_fixed)
    return torch.cat([vectors, fixed], dim=-1)


def gram_invariants(basis: Tensor) -> Tensor:
    """Scaled Gram matrix of a set of vectors, flattened: the O(3) invariants of ``basis``.

    Args:
        basis: ``(..., 3, n)`` vectors.

    Returns:
        ``(..., n * n)``: ``G / (||G||_F + 1)`` with ``G = B^T B``.

    >>> b = torch.randn(4, 3, 5, dtype=torch.float64)
    >>> q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    >>> torch.allclose(gram_invariants(q @ b), gram_invariants(b))
    True
    """
    return _NormalizedGram.apply(basis).flatten(-2)


def _gram(basis: Tensor) -> Tensor:
    """``B^T B`` of ``(..., k, n)`` as a sum of ``k`` outer products: exactly symmetric, and on CPU several times
    faster than a batched matmul of many tiny matrices."""
    rows = basis.unbind(-2)
    gram = rows[0].unsqueeze(-1) * rows[0].unsqueeze(-2)
    for row in rows[1:]:
        gram = gram.addcmul(row.unsqueeze(-1), row.unsqueeze(-2))
    return gram


class _NormalizedGram(torch.autograd.Function):
    """``G / (||G||_F + 1)`` with ``G = B^T B``, forward and backward written out (first-order gradients only).

    The same function as the three autograd ops it replaces, with fewer passes over the ``(..., n, n)`` matrices in
    the backward and no batched matmul of tiny matrices: the normalized Gram is the largest elementwise work of a
    SET layer. Measured on one CPU thread for PPO's minibatch (1,024 x 5 tokens, 10 vectors): forward and backward
    9.5 -> 4.6 ms (``scripts/bench_equivariant.py``, ``gram_speedup``); one PPO epoch of the
    ``set_one_body`` policy 0.93 -> 0.79 s.
    With ``Y`` the output and ``r = ||G||_F``: ``dG = dY / (r + 1) - <dY, Y> Y / r`` and ``dB = B (dG + dG^T)``.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, basis: Tensor) -> Tensor:  # type: ignore[override]
        gram = _gram(basis)
        norm = torch.linalg.matrix_norm(gram, keepdim=True)
        out = gram / (norm + 1.0)
        ctx.save_for_backward(basis, out, norm)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_out: Tensor) -> Tensor:  # type: ignore[override]
        basis, out, norm = ctx.saved_tensors  # type: ignore[attr-defined]
        along = (grad_out * out).sum((-1, -2), keepdim=True) / norm.clamp_min(torch.finfo(norm.dtype).tiny)
        grad_gram = grad_out / (norm + 1.0) - along * out
        sym = grad_gram + grad_gram.transpose(-1, -2)
        return (sym @ basis.transpose(-1, -2)).transpose(-1, -2)  # B sym, as sym^T B^T (faster for tiny B)


def _attention_weights(
    q: Tensor, k: Tensor, attn_bias: Tensor | None, key_padding_mask: Tensor | None, name: str
) -> Tensor:
    """Softmax over keys of ``q k^T / sqrt(d)`` (``(B, H, N, d)`` each) plus an additive bias (``(N, N)``,
    ``(B, N, N)`` or ``(B, H, N, N)``), padded keys (``(B, N)``, ``True`` = padding) excluded."""
    batch, _, tokens, dh = q.shape
    logits = q @ k.transpose(-1, -2) / math.sqrt(dh)  # (B, H, N, N)
    if attn_bias is not None:
        if attn_bias.dim() == 3:
            attn_bias = attn_bias.unsqueeze(1)
        logits = logits + attn_bias.to(logits.dtype)
    if key_padding_mask is not None:
        if key_padding_mask.shape != (batch, tokens):
            raise ValueError(f"{name}: key_padding_mask must be (B, N) = {(batch, tokens)}")
        logits = logits.masked_fill(key_padding_mask[:, None, None, :].bool(), float("-inf"))
    return torch.softmax(logits, dim=-1)


class SubequivariantBlock(nn.Module):
    """One subequivariant update of a token's vector and scalar streams.

    With ``Z`` the vectors ``(..., 3, C)``, ``h`` the scalars and ``f`` the fixed vectors ``(..., 3, F)``:

    1. ``B = [Z W_b, f]`` — a learned channel projection (no bias) with the fixed vectors appended;
    2. invariants ``I = gram(B_k)`` of the first ``invariant_channels`` projected channels and ``f``;
    3. an MLP on ``[I, h]`` gives new scalars and per-channel invariant gates ``s``;
    4. new vectors ``Z' = (B W_o) * s`` — i.e. ``B M`` with the channel-mixing matrix ``M = W_o diag(s)``
       produced from invariants.

    Args:
        vector_channels: ``C``, input vector channels.
        scalar_channels: ``S``, input scalar channels.
        out_vector_channels: output vector channels (default ``C``).
        out_scalar_channels: output scalar channels (default ``S``).
        num_fixed: ``F``, number of fixed vectors appended to the basis (e.g. 1 for gravity, 2 for ``g`` and ``d``).
        hidden: width of the invariant MLP.
        invariant_channels: number of projected channels entering the Gram matrix (keeps it small).

    >>> block = SubequivariantBlock(8, 16, num_fixed=1).double()
    >>> Z, h = torch.randn(5, 3, 8, dtype=torch.float64), torch.randn(5, 16, dtype=torch.float64)
    >>> g = torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64).reshape(3, 1)
    >>> Z2, h2 = block(Z, h, g)
    >>> tuple(Z2.shape), tuple(h2.shape)
    ((5, 3, 8), (5, 16))
    """

    def __init__(
        self,
        vector_channels: int,
        scalar_channels: int,
        out_vector_channels: int | None = None,
        out_scalar_channels: int | None = None,
        num_fixed: int = 0,
        hidden: int = 256,
        invariant_channels: int = 16,
    ) -> None:
        super().__init__()
        self.vector_channels = vector_channels
        self.scalar_channels = scalar_channels
        self.out_vector_channels = out_vector_channels or vector_channels
        self.out_scalar_channels = out_scalar_channels or scalar_channels
        self.num_fixed = num_fixed
        self.invariant_channels = min(invariant_channels, vector_channels)
        n_inv = (self.invariant_channels + num_fixed) ** 2
        self.project = nn.Linear(vector_channels, vector_channels, bias=False)
        self.mix = nn.Linear(vector_channels + num_fixed, self.out_vector_channels, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(n_inv + scalar_channels, hidden),
            nn.SiLU(),
            nn.Linear(hidden, self.out_scalar_channels + self.out_vector_channels),
        )

    def forward(self, vectors: Tensor, scalars: Tensor, fixed: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Update the streams.

        Args:
            vectors: ``(..., 3, C)``.
            scalars: ``(..., S)``.
            fixed: ``(..., 3, F)`` fixed vectors (broadcastable, e.g. ``(3, F)``), required iff ``num_fixed > 0``.

        Returns:
            ``(vectors (..., 3, C_out), scalars (..., S_out))``.
        """
        _check_streams(type(self).__name__, vectors, scalars, self.vector_channels, self.scalar_channels)
        projected = self.project(vectors)
        basis = _append_fixed(projected, fixed, self.num_fixed, type(self).__name__)
        inv_basis = _append_fixed(projected[..., : self.invariant_channels], fixed, self.num_fixed, "")
        out = self.mlp(torch.cat([gram_invariants(inv_basis), scalars], dim=-1))
        new_scalars, gates = out.split([self.out_scalar_channels, self.out_vector_channels], dim=-1)
        new_vectors = self.mix(basis) * gates.unsqueeze(-2)
        return new_vectors, new_scalars

    def extra_repr(self) -> str:
        return (
            f"vectors {self.vector_channels}->{self.out_vector_channels}, scalars {self.scalar_channels}->"
            f"{self.out_scalar_channels}, num_fixed={self.num_fixed}, invariant_channels={self.invariant_channels}"
        )


class _AttentionLayer(nn.Module):
    """What the two SET attention layers share: their channel bookkeeping and the checks of ``forward``."""

    def __init__(self, vector_channels: int, scalar_channels: int, num_heads: int, num_fixed: int) -> None:
        super().__init__()
        self.vector_channels, self.scalar_channels = vector_channels, scalar_channels
        self.num_heads, self.num_fixed = num_heads, num_fixed

    def forward(
        self,
        vectors: Tensor,
        scalars: Tensor,
        fixed: Tensor | None = None,
        attn_bias: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Attend over tokens.

        Args:
            vectors: ``(B, N, 3, C)``.
            scalars: ``(B, N, S)``.
            fixed: ``(B, N, 3, F)`` or broadcastable (``(3, F)``, ``(B, 1, 3, F)``).
            attn_bias: additive bias on the attention logits.
            key_padding_mask: ``(B, N)`` booleans, ``True`` for padding.

        Returns:
            Updated ``(vectors, scalars)`` of the same shapes.
        """
        name = type(self).__name__
        if vectors.dim() != 4:
            raise ValueError(f"{name}: vectors must be (B, N, 3, C), got {tuple(vectors.shape)}")
        _check_streams(name, vectors, scalars, self.vector_channels, self.scalar_channels)
        return self._attend(vectors, scalars, fixed, attn_bias, key_padding_mask)

    def _attend(
        self, vectors: Tensor, scalars: Tensor, fixed: Tensor | None, bias: Tensor | None, mask: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class SubequivariantAttention(_AttentionLayer):
    """Subequivariant multi-head self-attention over tokens, carrying both streams (a SET layer).

    Queries, keys and scalar values are computed from invariants (Gram features of the projected vectors and
    fixed vectors, concatenated with the scalars), so attention weights are invariant. Vector values are a
    learned channel projection of the vectors, so messages are equivariant. The block is

    ``attention -> residual -> LayerNorm (scalars only) -> SubequivariantBlock feed-forward -> residual -> LayerNorm``.

    Args:
        vector_channels: ``C``.
        scalar_channels: ``S`` (the model width).
        num_heads: attention heads; must divide ``S`` and ``C``.
        hidden: width of the feed-forward invariant MLP.
        num_fixed: number of fixed vectors (gravity, target direction, ...).
        invariant_channels: projected vector channels entering the Gram invariants.

    Call with ``attn_bias`` — additive, ``(N, N)``, ``(B, N, N)`` or ``(B, heads, N, N)`` (e.g. structural
    encodings of a morphology graph) — and ``key_padding_mask`` — ``(B, N)``, ``True`` marks padding, whose
    tokens then never influence real tokens.

    >>> layer = SubequivariantAttention(8, 16, num_heads=2, num_fixed=1)
    >>> Z, h = torch.randn(2, 5, 3, 8), torch.randn(2, 5, 16)
    >>> g = torch.tensor([0.0, 0.0, -1.0]).reshape(3, 1)
    >>> Z2, h2 = layer(Z, h, g, key_padding_mask=torch.tensor([[False] * 5, [False] * 3 + [True] * 2]))
    >>> tuple(Z2.shape), tuple(h2.shape)
    ((2, 5, 3, 8), (2, 5, 16))
    """

    def __init__(
        self,
        vector_channels: int,
        scalar_channels: int,
        *,
        num_heads: int = 2,
        hidden: int = 256,
        num_fixed: int = 0,
        invariant_channels: int = 16,
    ) -> None:
        if scalar_channels % num_heads or vector_channels % num_heads:
            raise ValueError(
                f"SubequivariantAttention: num_heads={num_heads} must divide scalar_channels={scalar_channels} "
                f"and vector_channels={vector_channels}"
            )
        super().__init__(vector_channels, scalar_channels, num_heads, num_fixed)
        self.invariant_channels = min(invariant_channels, vector_channels)
        n_inv = (self.invariant_channels + num_fixed) ** 2
        self.project = nn.Linear(vector_channels, self.invariant_channels, bias=False)
        self.qkv = nn.Linear(n_inv + scalar_channels, 3 * scalar_channels)
        self.value_vectors = nn.Linear(vector_channels, vector_channels, bias=False)
        self.out_scalars = nn.Linear(scalar_channels, scalar_channels)
        self.out_vectors = nn.Linear(vector_channels, vector_channels, bias=False)
        self.norm1 = nn.LayerNorm(scalar_channels)
        self.norm2 = nn.LayerNorm(scalar_channels)
        self.feed_forward = SubequivariantBlock(
            vector_channels,
            scalar_channels,
            num_fixed=num_fixed,
            hidden=hidden,
            invariant_channels=invariant_channels,
        )

    def _attend(
        self, vectors: Tensor, scalars: Tensor, fixed: Tensor | None, bias: Tensor | None, mask: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        name = type(self).__name__
        batch, tokens = scalars.shape[:2]
        heads, dh, dv = (
            self.num_heads,
            self.scalar_channels // self.num_heads,
            self.vector_channels // self.num_heads,
        )

        inv = gram_invariants(_append_fixed(self.project(vectors), fixed, self.num_fixed, name))
        q, k, v = self.qkv(torch.cat([inv, scalars], dim=-1)).split(self.scalar_channels, dim=-1)
        q = q.reshape(batch, tokens, heads, dh).transpose(1, 2)  # (B, H, N, dh)
        k = k.reshape(batch, tokens, heads, dh).transpose(1, 2)
        v = v.reshape(batch, tokens, heads, dh).transpose(1, 2)
        weights = _attention_weights(q, k, bias, mask, name)

        msg_scalars = (weights @ v).transpose(1, 2).reshape(batch, tokens, self.scalar_channels)
        value_vectors = self.value_vectors(vectors).reshape(batch, tokens, 3, heads, dv)
        msg_vectors = torch.einsum("bhij,bjxhc->bixhc", weights, value_vectors).reshape(vectors.shape)

        scalars = self.norm1(scalars + self.out_scalars(msg_scalars))
        vectors = vectors + self.out_vectors(msg_vectors)
        d_vectors, d_scalars = self.feed_forward(vectors, scalars, fixed)
        return vectors + d_vectors, self.norm2(scalars + d_scalars)


def _mlp(sizes: tuple[int, ...]) -> nn.Sequential:
    """Linear layers of the given widths with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(a, b))
    return nn.Sequential(*layers)


class GramMLP(nn.Module):
    """Invariant features of a token's vectors: the raw Gram matrix of ``[Z W, f]`` through an MLP.

    ``Z W`` projects the ``C`` vector channels to ``gram_channels`` (no bias); the fixed vectors ``f`` are appended;
    the ``(gram_channels + F)^2`` entries of the Gram matrix go **unnormalized** through a ReLU MLP. Also returns
    the scale ``||Gram||_F + 1`` by which the published SET divides the outputs computed from these features (the
    published form of the invariants; :func:`gram_invariants` normalizes the inputs instead).

    Args:
        vector_channels: ``C``.
        gram_channels: projected channels entering the Gram matrix (published: 30).
        num_fixed: ``F`` (published: 2, gravity and the target direction).
        hidden: hidden width of the MLP.
        out_features: output width.

    >>> gm = GramMLP(8, gram_channels=3, num_fixed=1, hidden=16, out_features=4).double()
    >>> Z, g = torch.randn(5, 3, 8, dtype=torch.float64), torch.tensor([[0.0], [0.0], [-9.81]], dtype=torch.float64)
    >>> feats, scale = gm(Z, g)
    >>> tuple(feats.shape), tuple(scale.shape)
    ((5, 4), (5, 1))
    """

    def __init__(
        self, vector_channels: int, gram_channels: int, num_fixed: int, hidden: int, out_features: int
    ) -> None:
        super().__init__()
        self.num_fixed = num_fixed
        self.project = nn.Linear(vector_channels, gram_channels, bias=False)
        self.mlp = _mlp(((gram_channels + num_fixed) ** 2, hidden, out_features))

    def forward(self, vectors: Tensor, fixed: Tensor | None) -> tuple[Tensor, Tensor]:
        """``(features (..., out_features), scale (..., 1))`` of ``vectors (..., 3, C)``."""
        basis = _append_fixed(self.project(vectors), fixed, self.num_fixed, type(self).__name__)
        gram = basis.transpose(-1, -2) @ basis
        scale = torch.linalg.matrix_norm(gram).unsqueeze(-1) + 1.0
        return self.mlp(gram.flatten(-2)), scale


class InvariantMatrixMixing(nn.Module):
    """Equivariant vector output ``([Z W, f] M) W_out`` with a full mixing matrix ``M`` computed from invariants.

    ``M`` is ``(k + F) x (k + F)``, produced by a ReLU MLP from invariant features ``u`` and divided by an
    invariant ``scale`` (the published SET's feed-forward vector update and actor decoder).

    Args:
        vector_channels: ``C``, input vector channels.
        mix_channels: ``k``, projected channels (published: 30).
        num_fixed: ``F``.
        in_features: width of ``u``.
        hidden: hidden width of the MLP.
        out_channels: output vector channels.
    """

    def __init__(
        self,
        vector_channels: int,
        mix_channels: int,
        num_fixed: int,
        in_features: int,
        hidden: int,
        out_channels: int,
    ) -> None:
        super().__init__()
        self.num_fixed = num_fixed
        self.size = mix_channels + num_fixed
        self.matrix = _mlp((in_features, hidden, self.size**2))
        self.project = nn.Linear(vector_channels, mix_channels, bias=False)
        self.out = nn.Linear(self.size, out_channels, bias=False)

    def forward(self, vectors: Tensor, fixed: Tensor | None, features: Tensor, scale: Tensor) -> Tensor:
        """``(..., 3, out_channels)`` from ``vectors (..., 3, C)``, invariant ``features`` and ``scale (..., 1)``."""
        m = (self.matrix(features) / scale).unflatten(-1, (self.size, self.size))
        basis = _append_fixed(self.project(vectors), fixed, self.num_fixed, type(self).__name__)
        return self.out(basis @ m)


class GramMLPAttention(_AttentionLayer):
    """A SET layer in the published form (3D-SGRL): Gram-MLP invariants, outputs scaled by ``1 / (||G||_F + 1)``,
    vector values that carry the fixed vectors per head, and a feed-forward vector update through an
    :class:`InvariantMatrixMixing` of the attention message.

    1. ``(a, n) = GramMLP(Z)``; ``u = [a, h]``; ``q, k, v = W u / n`` (each ``2 S`` wide, split over the heads);
       logits ``q k^T / sqrt(2 S / H)`` (+ ``attn_bias``), softmax over keys;
    2. scalar message ``h1 = W_s [heads]``; vector message ``Z1 = W_z [heads of (Z W_v, f)]``;
    3. ``Z <- Z + Z1``; ``h <- LayerNorm(h + h1)``;
    4. ``(a2, n2) = GramMLP'(Z1)``; ``u2 = [a2, h]``; ``Z <- Z + InvariantMatrixMixing(Z1, u2, n2)``;
       ``h <- LayerNorm(h + MLP(u2) / n2)``.

    Args:
        vector_channels: ``C`` (published: 128).
        scalar_channels: ``S``, the width (published: 128).
        num_heads: ``H`` (published: 2); must divide ``2 S``.
        hidden: width of the invariant MLPs (published: 256).
        num_fixed: ``F`` (published: 2).
        gram_channels: projected channels of every Gram and mixing step (published: 30).

    >>> layer = GramMLPAttention(8, 16, num_heads=2, hidden=16, num_fixed=1, gram_channels=3)
    >>> Z, h = torch.randn(2, 5, 3, 8), torch.randn(2, 5, 16)
    >>> Z2, h2 = layer(Z, h, torch.tensor([0.0, 0.0, -9.81]).reshape(3, 1))
    >>> Z2.shape == Z.shape and h2.shape == h.shape
    True
    """

    def __init__(
        self,
        vector_channels: int,
        scalar_channels: int,
        *,
        num_fixed: int = 2,
        num_heads: int = 2,
        hidden: int = 256,
        gram_channels: int = 30,
    ) -> None:
        c, s, h = vector_channels, scalar_channels, num_heads
        if (2 * s) % h or 2 * s // h <= num_fixed:
            raise ValueError(
                f"GramMLPAttention: num_heads={h} must divide 2 * scalar_channels={2 * s} into heads wider than "
                f"num_fixed={num_fixed}"
            )
        super().__init__(c, s, h, num_fixed)
        self.head_dim = 2 * s // h
        self.attn_gram = GramMLP(c, gram_channels, num_fixed, hidden, s)
        self.q = nn.Linear(2 * s, 2 * s)
        self.k = nn.Linear(2 * s, 2 * s)
        self.v = nn.Linear(2 * s, 2 * s)
        self.value_vectors = nn.Linear(c, h * (self.head_dim - num_fixed), bias=False)
        self.out_scalars = nn.Linear(2 * s, s)
        self.out_vectors = nn.Linear(h * self.head_dim, c, bias=False)
        self.norm1 = nn.LayerNorm(s)
        self.norm2 = nn.LayerNorm(s)
        self.ff_gram = GramMLP(c, gram_channels, num_fixed, hidden, s)
        self.ff_mix = InvariantMatrixMixing(c, gram_channels, num_fixed, 2 * s, hidden, c)
        self.ff_scalars = _mlp((2 * s, hidden, s))

    def _attend(
        self, vectors: Tensor, scalars: Tensor, fixed: Tensor | None, bias: Tensor | None, mask: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        name = type(self).__name__
        batch, tokens = scalars.shape[:2]
        heads, dh = self.num_heads, self.head_dim
        feats, scale = self.attn_gram(vectors, fixed)
        u = torch.cat([feats, scalars], dim=-1)

        def split(x: Tensor) -> Tensor:
            return x.reshape(batch, tokens, heads, dh).transpose(1, 2)  # (B, H, N, dh)

        q, k, v = (split(layer(u) / scale) for layer in (self.q, self.k, self.v))
        weights = _attention_weights(q, k, bias, mask, name)
        msg_scalars = self.out_scalars(
            (weights @ v).transpose(1, 2).reshape(batch, tokens, 2 * self.scalar_channels)
        )
        values = self.value_vectors(vectors).reshape(batch, tokens, 3, heads, dh - self.num_fixed)
        if self.num_fixed:
            f = fixed.to(values.dtype).expand(batch, tokens, 3, self.num_fixed)
            values = torch.cat(
                [values, f.unsqueeze(-2).expand(batch, tokens, 3, heads, self.num_fixed)], dim=-1
            )
        msg = torch.einsum("bhij,bjxhc->bixhc", weights, values).reshape(batch, tokens, 3, heads * dh)
        msg_vectors = self.out_vectors(msg)
        vectors = vectors + msg_vectors
        scalars = self.norm1(scalars + msg_scalars)
        feats2, scale2 = self.ff_gram(msg_vectors, fixed)
        u2 = torch.cat([feats2, scalars], dim=-1)
        vectors = vectors + self.ff_mix(msg_vectors, fixed, u2, scale2)
        return vectors, self.norm2(scalars + self.ff_scalars(u2) / scale2)
