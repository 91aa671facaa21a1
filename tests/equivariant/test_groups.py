"""Group elements and their actions: exactness, inverses, and the velocity permutation of 90° turns."""

from __future__ import annotations

import pytest
import torch

from equiworld.equivariant import (
    GravityRotations,
    TokenPermutations,
    TorusTranslations,
    VelocityGrid,
    flow_sequence,
    permute_tokens,
    rotate90_map,
    rotate_vectors,
    shift_torus,
)


@pytest.mark.parametrize("gravity", [(0.0, 0.0, -1.0), (0.0, -9.81, 0.0), (1.0, 2.0, -3.0)])
@pytest.mark.parametrize("reflections", [False, True])
def test_gravity_rotations_are_orthogonal_and_fix_gravity(gravity, reflections):
    group = GravityRotations(gravity=gravity, reflections=reflections)
    gen = torch.Generator().manual_seed(0)
    g = group.gravity_vector(torch.float64)
    dets = []
    for _ in range(20):
        R = group.sample(gen)
        assert R.dtype == torch.float64
        torch.testing.assert_close(R.T @ R, torch.eye(3, dtype=torch.float64), atol=1e-12, rtol=0)
        torch.testing.assert_close(R @ g, g, atol=1e-12, rtol=0)
        dets.append(float(torch.linalg.det(R)))
    assert all(abs(abs(d) - 1) < 1e-12 for d in dets)
    assert any(d < 0 for d in dets) == reflections, "reflections must appear iff the group has them"


def test_gravity_rotations_move_horizontal_vectors():
    R = GravityRotations().element(0.3)
    v = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    assert torch.linalg.vector_norm(R @ v - v) > 0.1


def test_rotate_vectors_any_batch_shape_and_vector_dim():
    R = GravityRotations().sample(torch.Generator().manual_seed(1))
    x = torch.randn(4, 5, 3, 7, dtype=torch.float64)
    expected = torch.einsum("ij,abjc->abic", R, x)
    torch.testing.assert_close(rotate_vectors(x, R, vector_dim=2), expected)
    torch.testing.assert_close(rotate_vectors(x.movedim(2, -1), R), expected.movedim(2, -1))
    per_sample = torch.stack([GravityRotations().sample(torch.Generator().manual_seed(i)) for i in range(4)])
    out = rotate_vectors(x, per_sample, vector_dim=2)
    for b in range(4):
        torch.testing.assert_close(out[b], torch.einsum("ij,ajc->aic", per_sample[b], x[b]))
    with pytest.raises(ValueError, match="size 3"):
        rotate_vectors(torch.zeros(4, 2), R)


def test_shift_torus_matches_roll_and_per_sample_shifts():
    x = torch.randn(3, 4, 9, 11)
    assert torch.equal(shift_torus(x, (2, -5)), torch.roll(x, (2, -5), (-2, -1)))
    shifts = torch.tensor([[1, 2], [-3, 4], [20, -13]]).reshape(3, 1, 2)
    out = shift_torus(x, shifts)
    for b in range(3):
        assert torch.equal(out[b], torch.roll(x[b], tuple(shifts[b, 0].tolist()), (-2, -1)))
    with pytest.raises(ValueError, match="integers"):
        shift_torus(x, torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match="broadcast"):
        shift_torus(x, torch.zeros(5, 1, 2, dtype=torch.long))


def test_torus_translations_group_laws():
    group = TorusTranslations(7, 9)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 7, 9)
    a, b = group.sample(gen), group.sample(gen)
    assert torch.equal(group.act(a, group.act(b, x)), group.act(a + b, x))
    assert torch.equal(group.act(group.inverse(a), group.act(a, x)), x)


def test_flow_sequence_moves_frame_t_by_t_velocity():
    x = torch.randn(2, 6, 3, 10, 10)
    moved = flow_sequence(x, (1, -2), time_dim=1)
    for t in range(6):
        assert torch.equal(moved[:, t], torch.roll(x[:, t], (t, -2 * t), (-2, -1)))
    per_sample = flow_sequence(x, torch.tensor([[1, 0], [0, 2]]), time_dim=1, start=3)
    assert torch.equal(per_sample[1, 2], torch.roll(x[1, 2], (0, 10), (-2, -1)))


def test_rot90_permutes_velocity_copies_consistently_with_motion():
    """A map moving at v, rotated frame by frame, is the rotated map moving at the permuted velocity."""
    grid = VelocityGrid(2)
    perm = grid.rotation_permutation(1)
    x = torch.randn(8, 8)
    for i, v in enumerate(grid.velocities):
        rotated_motion = torch.rot90(
            flow_sequence(x[None, None].expand(1, 4, 8, 8), v, time_dim=1), 1, (-2, -1)
        )
        new_index = int(torch.nonzero(perm == i))
        w = grid.velocities[new_index]
        motion_of_rotated = flow_sequence(
            torch.rot90(x, 1, (-2, -1))[None, None].expand(1, 4, 8, 8), w, time_dim=1
        )
        assert torch.equal(rotated_motion, motion_of_rotated), f"velocity {v.tolist()} -> {w.tolist()}"


def test_rotate90_map_four_turns_is_identity_and_checks_shapes():
    grid = VelocityGrid(1)
    h = torch.randn(2, len(grid), 3, 5, 5)
    out = h
    for _ in range(4):
        out = rotate90_map(out, 1, velocity_dim=1, grid=grid)
    assert torch.equal(out, h)
    assert not torch.equal(rotate90_map(h, 1, 1, grid), h)
    with pytest.raises(ValueError, match="square"):
        rotate90_map(torch.zeros(4, 5), 1)
    with pytest.raises(ValueError, match="VelocityGrid"):
        rotate90_map(h, 1, velocity_dim=1)


def test_velocity_grid_index_and_errors():
    grid = VelocityGrid(2)
    assert len(grid) == 25 and grid.velocities.shape == (25, 2)
    for i, v in enumerate(grid.velocities):
        assert grid.index(v) == i
    with pytest.raises(ValueError, match="outside the grid"):
        grid.index((3, 0))
    with pytest.raises(ValueError, match="max_speed"):
        VelocityGrid(-1)


def test_token_permutations_respect_padding():
    group = TokenPermutations(6)
    mask = torch.tensor([[False] * 6, [False, False, False, True, True, True]])
    gen = torch.Generator().manual_seed(0)
    perms = torch.stack([group.sample(gen, mask) for _ in range(20)])
    assert torch.equal(perms[:, 1, 3:], torch.tensor([3, 4, 5]).expand(20, 3))
    assert torch.equal(perms[:, 1, :3].sort(-1).values, torch.tensor([0, 1, 2]).expand(20, 3))
    assert len({tuple(p[0].tolist()) for p in perms}) > 5, "permutations should vary"
    x = torch.arange(12.0).reshape(2, 6)
    out = permute_tokens(x, perms[0], token_dim=1)
    assert torch.equal(out, torch.gather(x, 1, perms[0]))


def test_velocity_sets_share_one_type():
    """The 2D FloWM's grid and the 3D FloWM's cardinal set are one type: the grid's fast index agrees with the
    generic lookup, shift permutations keep copies inside the set, quarter turns permute both."""
    from equiworld.equivariant import VelocitySet

    grid, cardinal = VelocityGrid(1), VelocitySet.cardinal()
    assert isinstance(grid, VelocitySet)
    generic = VelocitySet(grid.velocities)
    for v in grid.velocities:
        assert grid.index(v) == generic.index(v)
    for velocities in (grid, cardinal):
        for k in range(4):
            perm = velocities.rotation_permutation(k)
            assert sorted(perm.tolist()) == list(range(len(velocities)))
    dst, src = cardinal.shift_permutation((0, 1))
    assert [tuple(cardinal.velocities[d].tolist()) for d in dst] == [(0, 0), (0, 1)]
    assert [tuple(cardinal.velocities[s].tolist()) for s in src] == [(0, -1), (0, 0)]
    torch.testing.assert_close(grid.shift_permutation((1, 0))[0], generic.shift_permutation((1, 0))[0])
    with pytest.raises(ValueError, match="distinct"):
        VelocitySet([(0, 0), (0, 0)])
    with pytest.raises(ValueError, match="not in"):
        cardinal.index((1, 1))
