"""Subequivariant layers: O_g(3) equivariance (float64 and float32, train and eval, re-initialized),
token permutation equivariance, padding isolation, and controls that must fail."""

from __future__ import annotations

import pytest
import torch

from equiworld.equivariant import (
    GramMLPAttention,
    GravityRotations,
    SubequivariantAttention,
    SubequivariantBlock,
    TokenPermutations,
    assert_equivariant,
    gram_invariants,
    permute_tokens,
    rotate_vectors,
)

GROUP = GravityRotations(reflections=True)
TOL = {torch.float64: 1e-9, torch.float32: 1e-4}
LAYERS = {  # the compact form and the published (3D-SGRL) form of a SET layer
    "compact": lambda: SubequivariantAttention(8, 16, num_heads=2, hidden=32, num_fixed=2),
    "published": lambda: GramMLPAttention(8, 16, num_heads=2, hidden=32, num_fixed=2, gram_channels=4),
}


def _reinit(module: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3)


def _inputs(dtype, batch=3, tokens=5, channels=8, scalars=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    vectors = torch.randn(batch, tokens, 3, channels, generator=gen, dtype=dtype)
    scalar = torch.randn(batch, tokens, scalars, generator=gen, dtype=dtype)
    g = GROUP.gravity_vector(dtype).reshape(1, 1, 3, 1).expand(batch, tokens, 3, 1)
    d = torch.randn(batch, 1, 3, 1, generator=gen, dtype=dtype)
    d[:, :, 2] = 0  # a horizontal target direction
    fixed = torch.cat([g, d.expand(batch, tokens, 3, 1)], dim=-1)
    return vectors, scalar, fixed


def _act(R, inputs):
    """O_g(3) acts on vectors and fixed vectors (gravity is fixed by R, so it is unchanged); scalars invariant."""
    vectors, scalars, fixed, *rest = inputs
    return (rotate_vectors(vectors, R, -2), scalars, rotate_vectors(fixed, R, -2), *rest)


def _act_out(R, out):
    vectors, scalars = out
    return rotate_vectors(vectors, R, -2), scalars


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("seed", [0, 1])
def test_block_is_subequivariant(dtype, mode, seed):
    block = SubequivariantBlock(
        8,
        16,
        out_vector_channels=6,
        out_scalar_channels=12,
        num_fixed=2,
        hidden=32,
    )
    block.to(dtype).train(mode == "train")
    _reinit(block, seed)
    x = _inputs(dtype, seed=seed)
    report = assert_equivariant(block, x, _act, _act_out, GROUP.sample, atol=TOL[dtype])
    assert report.scale > 1e-2


@pytest.mark.parametrize("form", list(LAYERS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("seed", [0, 1])
def test_attention_is_subequivariant_with_bias_and_padding(dtype, mode, seed, form):
    layer = LAYERS[form]().to(dtype).train(mode == "train")
    _reinit(layer, seed)
    vectors, scalars, fixed = _inputs(dtype, seed=seed)
    bias = torch.randn(3, 5, 5, dtype=dtype)
    mask = torch.tensor([[False] * 5, [False] * 3 + [True] * 2, [False] * 4 + [True]])

    def f(v, s, fx):
        return layer(v, s, fx, attn_bias=bias, key_padding_mask=mask)

    assert_equivariant(f, (vectors, scalars, fixed), _act, _act_out, GROUP.sample, atol=TOL[dtype])


@pytest.mark.parametrize("form", list(LAYERS))
def test_attention_is_token_permutation_equivariant(form):
    layer = LAYERS[form]().double()
    _reinit(layer, 3)
    vectors, scalars, fixed = _inputs(torch.float64)
    bias = torch.randn(3, 5, 5, dtype=torch.float64)
    mask = torch.tensor([[False] * 5, [False] * 3 + [True] * 2, [False] * 4 + [True]])
    group = TokenPermutations(5)

    def act_in(p, x):
        v, s, fx, b, m = x
        b = permute_tokens(permute_tokens(b, p, 1), p, 2)
        return permute_tokens(v, p), permute_tokens(s, p), permute_tokens(fx, p), b, permute_tokens(m, p)

    def act_out(p, y):
        return permute_tokens(y[0], p), permute_tokens(y[1], p)

    def f(v, s, fx, b, m):
        return layer(v, s, fx, attn_bias=b, key_padding_mask=m)

    assert_equivariant(
        f, (vectors, scalars, fixed, bias, mask), act_in, act_out, lambda g: group.sample(g, mask)
    )


@pytest.mark.parametrize("form", list(LAYERS))
def test_padded_tokens_do_not_change_real_tokens(form):
    layer = LAYERS[form]().double()
    vectors, scalars, fixed = _inputs(torch.float64, batch=1, tokens=6)
    mask = torch.tensor([[False] * 4 + [True] * 2])
    out_v, out_s = layer(vectors, scalars, fixed, key_padding_mask=mask)
    vectors2, scalars2 = vectors.clone(), scalars.clone()
    vectors2[:, 4:] = 1e3 * torch.randn_like(vectors2[:, 4:])
    scalars2[:, 4:] = -7.0
    out_v2, out_s2 = layer(vectors2, scalars2, fixed, key_padding_mask=mask)
    torch.testing.assert_close(out_v2[:, :4], out_v[:, :4], atol=1e-12, rtol=0)
    torch.testing.assert_close(out_s2[:, :4], out_s[:, :4], atol=1e-12, rtol=0)
    # ... and without the mask they would: the control shows the test can fail.
    out_v3, _ = layer(vectors2, scalars2, fixed)
    assert (out_v3[:, :4] - out_v[:, :4]).abs().max() > 1e-3


@pytest.mark.parametrize("form", list(LAYERS))
def test_misplaced_gravity_breaks_equivariance(form):
    """Control: a layer given a horizontal 'gravity' that the group does not fix is not O_g(3) equivariant."""
    layer = LAYERS[form]().double()
    vectors, scalars, fixed = _inputs(torch.float64)
    fixed = fixed.clone()
    fixed[..., 0] = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)  # not fixed by rotations about z

    def act_keep_fixed(R, x):  # the "fixed" vectors are held still, as gravity would be
        return (
            rotate_vectors(x[0], R, -2),
            x[1],
            torch.cat([x[2][..., :1], rotate_vectors(x[2][..., 1:], R, -2)], -1),
        )

    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(layer, (vectors, scalars, fixed), act_keep_fixed, _act_out, GROUP.sample)


def test_layers_reject_wrong_shapes_with_clear_messages():
    layer = SubequivariantAttention(8, 16, num_heads=2, num_fixed=1)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, 8\)"):
        layer(torch.zeros(2, 5, 8, 3), torch.zeros(2, 5, 16), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="fixed vectors"):
        layer(torch.zeros(2, 5, 3, 8), torch.zeros(2, 5, 16))
    with pytest.raises(ValueError, match="num_heads"):
        SubequivariantAttention(8, 15, num_heads=2)


def _normalized_gram_by_autograd(basis: torch.Tensor) -> torch.Tensor:
    """The normalized Gram invariants as three plain autograd ops: the reference for the hand-written backward."""
    gram = basis.transpose(-1, -2) @ basis
    return (gram / (torch.linalg.matrix_norm(gram, keepdim=True) + 1.0)).flatten(-2)


@pytest.mark.parametrize("shape", [(4, 3, 5), (2, 3, 3, 10), (3, 2, 4)])
def test_normalized_gram_matches_autograd_values_and_gradients(shape):
    gen = torch.Generator().manual_seed(sum(shape))
    basis = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(*shape[:-2], shape[-1] ** 2, generator=gen, dtype=torch.float64)
    fast = gram_invariants(basis)
    (fast_grad,) = torch.autograd.grad((fast * weights).sum(), basis)
    reference = _normalized_gram_by_autograd(basis)
    (reference_grad,) = torch.autograd.grad((reference * weights).sum(), basis)
    torch.testing.assert_close(fast, reference, rtol=0, atol=1e-14)
    torch.testing.assert_close(fast_grad, reference_grad, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(gram_invariants, (basis.detach()[..., :3].clone().requires_grad_(True),))


def test_normalized_gram_of_zero_vectors_has_finite_zero_gradient():
    basis = torch.zeros(2, 3, 4, requires_grad=True)
    gram_invariants(basis).sum().backward()
    assert basis.grad is not None and torch.equal(basis.grad, torch.zeros_like(basis))
