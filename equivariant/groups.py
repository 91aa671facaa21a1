"""Groups and their actions on tensors.

Every group here has a ``sample`` method that draws random elements from an explicit
:class:`torch.Generator` (never the global random state), and one or more action functions that apply an
element to a tensor. The actions are batched, work in float32 and float64, and are exact where the group is
discrete (translations and 90° rotations of a torus, permutations).

Conventions:

* 3-vectors live on a dimension of size 3 (``vector_dim``, default -1). A rotation ``R`` acts as ``R @ v``.
* Maps and images have their two spatial dimensions last, ``(..., H, W)``. A shift ``s = (sy, sx)`` moves
  content forward: ``out[..., y, x] = in[..., y - sy, x - sx]`` (indices modulo the torus), i.e. the same as
  ``torch.roll(x, shifts=(sy, sx), dims=(-2, -1))``.
* Velocities are integer pairs ``(vy, vx)`` in pixels per step, in the same convention as shifts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "GravityRotations",
    "TokenPermutations",
    "TorusTranslations",
    "VelocityGrid",
    "VelocitySet",
    "flow_sequence",
    "permute_tokens",
    "rotate90_map",
    "rotate_about_gravity",
    "rotate_vectors",
    "rotation_about_axis",
    "shift_torus",
]


# --------------------------------------------------------------------------------------------------------
# Rotations (and reflections) about the gravity axis: the group O_g(3)
# --------------------------------------------------------------------------------------------------------


def rotation_about_axis(axis: Tensor, angle: Tensor) -> Tensor:
    """Rotation matrices about a unit ``axis`` by ``angle`` (Rodrigues' formula).

    Args:
        axis: ``(3,)`` unit vector.
        angle: ``(...)`` angles in radians.

    Returns:
        ``(..., 3, 3)`` rotation matrices in the dtype of ``angle``.

    >>> R = rotation_about_axis(torch.tensor([0.0, 0.0, 1.0]), torch.tensor(math.pi / 2))
    >>> torch.allclose(R @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
    True
    """
    axis = axis.to(angle.dtype)
    k = torch.zeros(3, 3, dtype=angle.dtype, device=angle.device)
    k[0, 1], k[0, 2], k[1, 2] = -axis[2], axis[1], -axis[0]
    k = k - k.T
    eye = torch.eye(3, dtype=angle.dtype, device=angle.device)
    s, c = torch.sin(angle)[..., None, None], torch.cos(angle)[..., None, None]
    return eye + s * k + (1 - c) * (k @ k)


def rotate_vectors(x: Tensor, rotation: Tensor, vector_dim: int = -1) -> Tensor:
    """Apply a ``(3, 3)`` orthogonal matrix to the 3-vectors stored along ``vector_dim`` of ``x``.

    Args:
        x: tensor with a dimension of size 3 at ``vector_dim`` (any batch shape around it).
        rotation: ``(3, 3)`` matrix, or ``(B, 3, 3)`` with ``B`` equal to ``x.shape[0]`` for a per-sample element.
        vector_dim: which dimension of ``x`` holds the vector components.

    Returns:
        A tensor of the shape of ``x`` with every vector ``v`` replaced by ``rotation @ v``.
    """
    if x.shape[vector_dim] != 3:
        raise ValueError(
            f"rotate_vectors: dimension {vector_dim} of x must have size 3, got shape {tuple(x.shape)}"
        )
    rotation = rotation.to(dtype=x.dtype, device=x.device)
    moved = x.movedim(vector_dim, -1)
    if rotation.dim() == 2:
        out = moved @ rotation.T
    elif rotation.dim() == 3 and rotation.shape[0] == x.shape[0] and vector_dim not in (0, -x.dim()):
        shape = (rotation.shape[0],) + (1,) * (moved.dim() - 2) + (3, 3)
        out = (moved.unsqueeze(-2) @ rotation.transpose(-1, -2).reshape(shape)).squeeze(-2)
    else:
        raise ValueError(
            f"rotate_vectors: rotation must be (3, 3) or (B, 3, 3) with B = x.shape[0]; got {tuple(rotation.shape)}"
        )
    return out.movedim(-1, vector_dim)


@dataclass(frozen=True)
class GravityRotations:
    """The group of orthogonal maps of R^3 that fix the gravity direction.

    With ``reflections=False`` this is SO(2) acting about the gravity axis; with ``reflections=True`` it is
    O_g(3) = SO(2) x reflections in vertical planes (the symmetry group of SET, REFERENCES §1).

    Args:
        gravity: direction of gravity (need not be unit); default ``(0, 0, -1)``.
        reflections: whether sampled elements may include a reflection in a vertical plane.

    >>> group = GravityRotations(reflections=True)
    >>> R = group.sample(torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> torch.allclose(R @ group.gravity_vector(torch.float64), group.gravity_vector(torch.float64))
    True
    >>> torch.allclose(R.T @ R, torch.eye(3, dtype=torch.float64))
    True
    """

    gravity: tuple[float, float, float] = (0.0, 0.0, -1.0)
    reflections: bool = False

    def gravity_vector(self, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
        """The unit gravity direction as a ``(3,)`` tensor."""
        g = torch.tensor(self.gravity, dtype=dtype, device=device)
        norm = torch.linalg.vector_norm(g)
        if norm == 0:
            raise ValueError("GravityRotations: gravity must be a non-zero vector")
        return g / norm

    def element(
        self, angle: float | Tensor, reflect: bool = False, dtype: torch.dtype = torch.float64
    ) -> Tensor:
        """The ``(3, 3)`` matrix of the rotation by ``angle`` about gravity, optionally after a reflection."""
        g = self.gravity_vector(dtype)
        rotation = rotation_about_axis(g, torch.as_tensor(angle, dtype=dtype))
        if reflect:
            # A horizontal unit vector n (orthogonal to g); reflect in the vertical plane normal to n.
            trial = torch.tensor([1.0, 0.0, 0.0], dtype=dtype)
            if torch.abs(torch.dot(trial, g)) > 0.9:
                trial = torch.tensor([0.0, 1.0, 0.0], dtype=dtype)
            n = trial - torch.dot(trial, g) * g
            n = n / torch.linalg.vector_norm(n)
            rotation = rotation @ (torch.eye(3, dtype=dtype) - 2 * torch.outer(n, n))
        return rotation

    def sample(self, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64) -> Tensor:
        """A random element as a ``(3, 3)`` matrix: uniform angle, and a fair coin for the reflection."""
        angle = torch.rand((), generator=generator, dtype=torch.float64) * 2 * math.pi
        reflect = bool(self.reflections and torch.rand((), generator=generator) < 0.5)
        return self.element(angle, reflect=reflect, dtype=dtype)

    def act(self, element: Tensor, x: Tensor, vector_dim: int = -1) -> Tensor:
        """``rotate_vectors(x, element, vector_dim)``."""
        return rotate_vectors(x, element, vector_dim)


def rotate_about_gravity(
    x: Tensor,
    angle: float | Tensor,
    vector_dim: int = -1,
    gravity: tuple[float, float, float] = (0.0, 0.0, -1.0),
) -> Tensor:
    """Rotate the 3-vectors stored along ``vector_dim`` of ``x`` by ``angle`` (rad) about the vertical, counter-clockwise
    seen from above (about ``-gravity``, as the morphology envs' start ``yaw``): one element of
    :class:`GravityRotations` acting, e.g. on the world-frame vectors of a morphology observation.

    >>> v = torch.tensor([[1.0, 0.0, 0.5], [0.0, 2.0, -1.0]])
    >>> rotate_about_gravity(v, math.pi / 2).round(decimals=6)  # x goes to y, heights unchanged
    tensor([[ 0.0000,  1.0000,  0.5000],
            [-2.0000,  0.0000, -1.0000]])
    """
    up = -GravityRotations(gravity).gravity_vector(torch.float64)
    return rotate_vectors(x, rotation_about_axis(up, torch.as_tensor(angle, dtype=torch.float64)), vector_dim)


# --------------------------------------------------------------------------------------------------------
# Integer translations of a torus
# --------------------------------------------------------------------------------------------------------


def _torus_index(shifts: Tensor, height: int, width: int, pad: int = 0) -> Tensor:
    """Flat gather indices ``(..., (H+2p)*(W+2p))`` implementing the shifts ``(..., 2)`` on an ``H x W`` torus,
    with ``pad`` rows/columns of circular padding around the result."""
    device = shifts.device
    rows = torch.arange(-pad, height + pad, device=device)
    cols = torch.arange(-pad, width + pad, device=device)
    src_rows = torch.remainder(rows - shifts[..., 0:1], height)  # (..., H)
    src_cols = torch.remainder(cols - shifts[..., 1:2], width)  # (..., W)
    return (src_rows.unsqueeze(-1) * width + src_cols.unsqueeze(-2)).flatten(-2)


def shift_torus(x: Tensor, shifts: Tensor | tuple[int, int], pad: int = 0) -> Tensor:
    """Translate maps on a torus by integer shifts, every map by its own shift, in one gather.

    Args:
        x: ``(..., H, W)`` maps.
        shifts: integer ``(2,)`` shift ``(sy, sx)``, or ``(*lead, 2)`` where ``lead`` broadcasts against
            ``x.shape[:-2]`` (e.g. ``(B, 1, 1, 2)`` for per-sample self-motion of a ``(B, V, C, H, W)`` state,
            or ``(V, 1, 2)`` for one velocity per copy).
        pad: also return ``pad`` rows and columns of circular padding on every side (the shifted torus seen
            through a window ``pad`` pixels larger), ready for an unpadded convolution: the shift and the
            padding then cost one gather instead of several copies.

    Returns:
        ``out[..., y, x] = x[..., (y - sy) % H, (x - sx) % W]`` for ``y`` in ``[-pad, H + pad)`` (and likewise
        ``x``), of shape ``(..., H + 2 pad, W + 2 pad)`` and the dtype of ``x``. Exact.

    >>> m = torch.arange(6.0).reshape(2, 3)
    >>> torch.equal(shift_torus(m, (1, 2)), torch.roll(m, shifts=(1, 2), dims=(-2, -1)))
    True
    """
    shifts = torch.as_tensor(shifts, device=x.device)
    if shifts.shape[-1] != 2 or shifts.is_floating_point():
        raise ValueError(f"shift_torus: shifts must be integers of shape (..., 2), got {tuple(shifts.shape)}")
    height, width = x.shape[-2:]
    lead = x.shape[:-2]
    if shifts.dim() == 1 and pad == 0:
        return torch.roll(x, shifts=(int(shifts[0]), int(shifts[1])), dims=(-2, -1))
    if shifts.dim() == 1:
        shifts = shifts.reshape(*([1] * len(lead)), 2)
    try:
        target = torch.broadcast_shapes(shifts.shape[:-1], lead)
    except RuntimeError as err:
        raise ValueError(
            f"shift_torus: shifts of shape {tuple(shifts.shape)} do not broadcast against maps {tuple(x.shape)}"
        ) from err
    if target != lead:
        raise ValueError(
            f"shift_torus: shifts {tuple(shifts.shape)} would enlarge the batch of x {tuple(x.shape)}"
        )
    out_h, out_w = height + 2 * pad, width + 2 * pad
    index = _torus_index(shifts, height, width, pad).expand(*lead, out_h * out_w)
    return torch.gather(x.reshape(*lead, height * width), -1, index).reshape(*lead, out_h, out_w)


@dataclass(frozen=True)
class TorusTranslations:
    """Integer translations of an ``H x W`` torus.

    >>> group = TorusTranslations(50, 50)
    >>> s = group.sample(torch.Generator().manual_seed(0))
    >>> x = torch.rand(2, 50, 50)
    >>> torch.equal(group.act(group.inverse(s), group.act(s, x)), x)
    True
    """

    height: int
    width: int

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """A random shift ``(2,)`` with components in ``[0, H)`` and ``[0, W)``."""
        return torch.stack(
            [
                torch.randint(self.height, (), generator=generator),
                torch.randint(self.width, (), generator=generator),
            ]
        )

    def inverse(self, shift: Tensor) -> Tensor:
        """The inverse shift."""
        return -shift

    def act(self, shift: Tensor, x: Tensor) -> Tensor:
        """``shift_torus(x, shift)``."""
        return shift_torus(x, shift)


# --------------------------------------------------------------------------------------------------------
# Flows: constant-velocity translations over time, and 90° rotations that permute velocities
# --------------------------------------------------------------------------------------------------------


class VelocitySet:
    """A finite set of integer velocities ``(vy, vx)`` (map cells per step): the copies of a lifted,
    flow-equivariant state. Copy ``i`` moves at ``velocities[i]``.

    Args:
        velocities: ``(|V|, 2)`` distinct integer velocities, in copy order.

    >>> still_and_cardinal = VelocitySet.cardinal()
    >>> still_and_cardinal.velocities.tolist(), still_and_cardinal.rotation_permutation(1).tolist()
    ([[0, 0], [-1, 0], [0, -1], [1, 0], [0, 1]], [0, 4, 1, 2, 3])
    """

    def __init__(self, velocities: Tensor | list[tuple[int, int]]) -> None:
        v = torch.as_tensor(velocities, dtype=torch.long).reshape(-1, 2)
        if len({tuple(row) for row in v.tolist()}) != len(v):
            raise ValueError(f"VelocitySet: velocities must be distinct, got {v.tolist()}")
        self._velocities = v

    @classmethod
    def cardinal(cls) -> VelocitySet:
        """Still and the four cardinal unit moves, ordered ``still, up, left, down, right`` so that a
        counter-clockwise quarter turn of the map (``torch.rot90``, ``k = 1``) cycles the moving copies forward
        (the 3D FloWM's set)."""
        return cls([(0, 0), (-1, 0), (0, -1), (1, 0), (0, 1)])

    @property
    def velocities(self) -> Tensor:
        """``(|V|, 2)`` long tensor of ``(vy, vx)``."""
        return self._velocities

    def __len__(self) -> int:
        return len(self.velocities)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.velocities.tolist()})"

    def index(self, velocity: tuple[int, int] | Tensor) -> int:
        """Position of ``velocity`` in the set; ``ValueError`` if it is not in it."""
        match = (self.velocities == torch.as_tensor(velocity, dtype=torch.long).reshape(2)).all(-1).nonzero()
        if len(match) != 1:
            raise ValueError(f"velocity {tuple(torch.as_tensor(velocity).tolist())} is not in {self!r}")
        return int(match[0, 0])

    def __contains__(self, velocity: object) -> bool:
        try:
            self.index(velocity)  # type: ignore[arg-type]
        except ValueError:
            return False
        return True

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """A random velocity of the set, ``(2,)`` long."""
        return self.velocities[torch.randint(len(self), (), generator=generator)]

    def shift_permutation(self, velocity: tuple[int, int] | Tensor) -> tuple[Tensor, Tensor]:
        """Copies that stay inside the set when the input moves at ``velocity``.

        Returns ``(dst, src)`` index tensors such that, for a flow-equivariant lifted state ``h``,
        the state of the moved run satisfies ``h_moved[..., dst[i], ...] == shift(h[..., src[i], ...])``:
        copy ``v`` of the moved run corresponds to copy ``v - velocity`` of the original run.
        """
        u = torch.as_tensor(velocity).reshape(2)
        pairs = [(i, self.index(s)) for i, s in enumerate(self.velocities - u) if s in self]
        dst = torch.tensor([d for d, _ in pairs], dtype=torch.long)
        src = torch.tensor([r for _, r in pairs], dtype=torch.long)
        return dst, src

    def rotation_permutation(self, k: int = 1) -> Tensor:
        """Permutation ``p`` with ``rotated[..., i, ...] = original[..., p[i], ...]`` for a ``k x 90°`` turn.

        Matches :func:`rotate90_map`: a map rotated by ``torch.rot90(x, k, dims=(-2, -1))`` moves content that
        travelled at ``v`` so that it travels at ``rot(v)``; copy ``rot(v)`` of the rotated state is copy ``v``
        of the original. The set must be closed under quarter turns.
        """
        rotated = self.velocities.clone()
        for _ in range(k % 4):
            # rot90 (counter-clockwise in (row, col) index space, dims (-2, -1)) maps (y, x) -> (-x, y).
            rotated = torch.stack([-rotated[:, 1], rotated[:, 0]], dim=-1)
        perm = torch.empty(len(self), dtype=torch.long)
        for i, r in enumerate(rotated):
            perm[self.index(r)] = i
        return perm


@dataclass(frozen=True, repr=False)
class VelocityGrid(VelocitySet):
    """The grid of integer velocities ``V = {-k..k}^2`` used to lift the 2D FloWM's hidden states.

    Args:
        max_speed: ``k``, the largest ``|v|`` per axis. ``0`` gives the single velocity ``(0, 0)``.

    The order is row-major over ``(vy, vx)``, so ``velocities[i]`` is the velocity of copy ``i``.

    >>> VelocityGrid(1).velocities.tolist()
    [[-1, -1], [-1, 0], [-1, 1], [0, -1], [0, 0], [0, 1], [1, -1], [1, 0], [1, 1]]
    """

    max_speed: int = 2

    def __post_init__(self) -> None:
        if self.max_speed < 0:
            raise ValueError(f"VelocityGrid: max_speed must be >= 0, got {self.max_speed}")
        r = torch.arange(-self.max_speed, self.max_speed + 1)
        object.__setattr__(
            self, "_velocities", torch.stack(torch.meshgrid(r, r, indexing="ij"), dim=-1).reshape(-1, 2)
        )

    def __repr__(self) -> str:
        return f"VelocityGrid(max_speed={self.max_speed})"

    def index(self, velocity: tuple[int, int] | Tensor) -> int:
        """Position of ``velocity`` in the grid; ``ValueError`` if it lies outside."""
        vy, vx = (int(v) for v in velocity)
        k = self.max_speed
        if max(abs(vy), abs(vx)) > k:
            raise ValueError(f"velocity {(vy, vx)} is outside the grid {{-{k}..{k}}}^2")
        return (vy + k) * (2 * k + 1) + (vx + k)


def flow_sequence(x: Tensor, velocity: Tensor | tuple[int, int], time_dim: int = 1, start: int = 0) -> Tensor:
    """Move a sequence of maps at constant velocity: frame ``t`` is shifted by ``(start + t) * velocity``.

    Args:
        x: ``(..., T, ..., H, W)`` sequence with time at ``time_dim``.
        velocity: integer ``(vy, vx)``, or ``(B, 2)`` with one velocity per sample (``time_dim`` must then be >= 1).
        time_dim: the time dimension of ``x``.
        start: time index of the first frame (the shift of frame 0 is ``start * velocity``).

    Returns:
        The moved sequence, same shape as ``x``. Exact.

    Examples:
        >>> seq = torch.zeros(1, 3, 5, 5); seq[:, :, 0, 0] = 1
        >>> moved = flow_sequence(seq, (1, 2))
        >>> [tuple(torch.nonzero(moved[0, t]).flatten().tolist()) for t in range(3)]
        [(0, 0), (1, 2), (2, 4)]
    """
    velocity = torch.as_tensor(velocity, device=x.device)
    time_dim = time_dim % x.dim()
    if time_dim >= x.dim() - 2:
        raise ValueError("flow_sequence: time_dim must come before the two spatial dimensions")
    steps = x.shape[time_dim]
    t = torch.arange(start, start + steps, device=x.device)
    if velocity.dim() == 1:
        shifts = t[:, None] * velocity[None, :]  # (T, 2)
        shape = [1] * (x.dim() - 2)
        shape[time_dim] = steps
        shifts = shifts.reshape(*shape, 2)
    elif velocity.dim() == 2 and time_dim >= 1 and velocity.shape[0] == x.shape[0]:
        shifts = velocity[:, None, :] * t[None, :, None]  # (B, T, 2)
        shape = [1] * (x.dim() - 2)
        shape[0], shape[time_dim] = velocity.shape[0], steps
        shifts = shifts.reshape(*shape, 2)
    else:
        raise ValueError(f"flow_sequence: velocity must be (2,) or (B, 2), got {tuple(velocity.shape)}")
    return shift_torus(x, shifts)


def rotate90_map(
    x: Tensor, k: int = 1, velocity_dim: int | None = None, grid: VelocityGrid | None = None
) -> Tensor:
    """Rotate maps by ``k x 90°`` and, for lifted states, permute the velocity copies to match.

    Args:
        x: ``(..., H, W)`` maps (square if ``k`` is odd).
        k: number of quarter turns (``torch.rot90`` convention on dims ``(-2, -1)``).
        velocity_dim: dimension of ``x`` that indexes the copies of ``grid``; ``None`` for plain maps.
        grid: the velocity grid of the copies (required with ``velocity_dim``).

    Returns:
        The rotated (and permuted) tensor. Exact; four quarter turns are the identity.

    >>> grid = VelocityGrid(1)
    >>> h = torch.rand(2, len(grid), 4, 7, 7)
    >>> torch.equal(rotate90_map(rotate90_map(h, 3, 1, grid), 1, 1, grid), h)
    True
    """
    if k % 2 and x.shape[-1] != x.shape[-2]:
        raise ValueError(f"rotate90_map: odd quarter turns need square maps, got {tuple(x.shape[-2:])}")
    out = torch.rot90(x, k, dims=(-2, -1))
    if velocity_dim is not None:
        if grid is None or x.shape[velocity_dim] != len(grid):
            raise ValueError("rotate90_map: pass the VelocityGrid whose size matches x.shape[velocity_dim]")
        out = out.index_select(velocity_dim, grid.rotation_permutation(k).to(x.device))
    return out


# --------------------------------------------------------------------------------------------------------
# Permutations of tokens (limbs), respecting a padding mask
# --------------------------------------------------------------------------------------------------------


def permute_tokens(x: Tensor, permutation: Tensor, token_dim: int = 1) -> Tensor:
    """Reorder tokens: ``out[:, i] = x[:, permutation[:, i]]`` (per-sample ``(B, N)``) or shared ``(N,)``."""
    token_dim = token_dim % x.dim()
    if permutation.dim() == 1:
        return x.index_select(token_dim, permutation.to(x.device))
    if token_dim == 0 or permutation.shape[0] != x.shape[0]:
        raise ValueError("permute_tokens: a per-sample permutation needs (B, N) and token_dim >= 1")
    shape = [x.shape[0]] + [1] * (x.dim() - 1)
    shape[token_dim] = permutation.shape[1]
    index = (
        permutation.to(x.device).reshape(shape).expand(*x.shape[: token_dim + 1], *x.shape[token_dim + 1 :])
    )
    return torch.gather(x, token_dim, index)


@dataclass(frozen=True)
class TokenPermutations:
    """Permutations of ``N`` tokens that keep padded tokens in place.

    Args:
        num_tokens: ``N``.

    ``sample(mask)`` with a ``(B, N)`` boolean padding mask (``True`` = padding) returns a ``(B, N)``
    permutation that shuffles the real tokens among the real slots and fixes every padded slot.

    >>> group = TokenPermutations(4)
    >>> mask = torch.tensor([[False, False, True, True]])
    >>> p = group.sample(torch.Generator().manual_seed(1), mask)
    >>> p[0, 2:].tolist(), sorted(p[0, :2].tolist())
    ([2, 3], [0, 1])
    """

    num_tokens: int

    def sample(self, generator: torch.Generator | None = None, padding_mask: Tensor | None = None) -> Tensor:
        """A random permutation, ``(N,)`` without a mask or ``(B, N)`` with one."""
        if padding_mask is None:
            return torch.randperm(self.num_tokens, generator=generator)
        if padding_mask.shape[-1] != self.num_tokens or padding_mask.dim() != 2:
            raise ValueError(f"TokenPermutations: padding_mask must be (B, {self.num_tokens})")
        perms = []
        for row in padding_mask.cpu():
            real = torch.nonzero(~row).flatten()
            perm = torch.arange(self.num_tokens)
            perm[real] = real[torch.randperm(len(real), generator=generator)]
            perms.append(perm)
        return torch.stack(perms).to(padding_mask.device)

    def act(self, permutation: Tensor, x: Tensor, token_dim: int = 1) -> Tensor:
        """``permute_tokens(x, permutation, token_dim)``."""
        return permute_tokens(x, permutation, token_dim)
