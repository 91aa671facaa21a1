"""Checkpoints and run folders of the earlier layout, in which a transformer policy was one flat configuration
(``SETConfig``: sizes, form and variant flags side by side) and some policies had other names.

The SB3 policies pass the flat keywords a checkpoint was saved with through :func:`parts_from_flat_config`, so such
checkpoints load and act as before; a retired option is refused with the commit that still runs it.
"""

from __future__ import annotations

from typing import Any

from .parts import (
    SET,
    Architecture,
    BodyContext,
    FlatTransformer,
    LimbReadout,
    PublishedSET,
    Sizes,
    TorqueReadout,
)

__all__ = ["FLAT_CONFIG_FIELDS", "RENAMED_POLICIES", "current_policy_name", "parts_from_flat_config"]

RETIRED_AT = "a3c4b60"
"""The last commit that builds the retired variants (``set_lateral``, ``set_asinh``, ``set_limb_embedding``,
``set_keyed_rbf``, ...)."""

RENAMED_POLICIES = {"set_context_readout": "set_one_body", "set_keyed": "set_any_body"}
"""Earlier policy names of today's policies."""

FLAT_CONFIG_FIELDS = frozenset(
    {
        *(
            "width",
            "vector_channels",
            "num_layers",
            "num_heads",
            "hidden",
            "invariant_channels",
            "gram_channels",
        ),
        *("fixed_vectors", "symmetric", "form", "graph_encodings", "frame", "context", "context_hidden"),
        *("readout", "limbs", "gram_scaling", "limb_embedding", "limb_keys", "descriptor_rbf"),
    }
)
"""The keywords of the earlier flat configuration."""

_SIZE_FIELDS = frozenset(Sizes.__dataclass_fields__)


def current_policy_name(name: str | None) -> str | None:
    """Today's name of a policy named ``name`` (an earlier name, or already today's).

    >>> current_policy_name("set_context_readout"), current_policy_name("set")
    ('set_one_body', 'set')
    """
    return RENAMED_POLICIES.get(name, name) if name is not None else None


def parts_from_flat_config(fields: dict[str, Any], base: Sizes | None = None) -> tuple[Architecture, Sizes]:
    """The architecture and sizes of an earlier flat configuration (missing keys keep their earlier defaults; sizes
    missing take ``base``'s).

    Raises:
        ValueError: for an option that was retired (the message names the commit that still builds it).
    """
    unknown = set(fields) - FLAT_CONFIG_FIELDS
    if unknown:
        raise TypeError(f"unexpected keywords {sorted(unknown)}")
    retired = {
        "gram_scaling": fields.get("gram_scaling", "normalized") != "normalized",
        "limb_embedding": bool(fields.get("limb_embedding", 0)),
        "descriptor_rbf": bool(fields.get("descriptor_rbf", 0)),
        "fixed_vectors 'lateral'": "lateral" in tuple(fields.get("fixed_vectors", ())),
    }
    used = [name for name, on in retired.items() if on]
    if used:
        raise ValueError(
            f"this policy uses {', '.join(used)}, an option retired after commit {RETIRED_AT}; "
            f"load it with that commit's code (git checkout {RETIRED_AT})"
        )
    sizes = Sizes(**{**vars(base or Sizes()), **{k: v for k, v in fields.items() if k in _SIZE_FIELDS}})
    fixed = tuple(fields.get("fixed_vectors", ("gravity", "target_direction")))
    if fields.get("form", "compact") == "published":
        return PublishedSET(fixed, fields.get("graph_encodings", "ours")), sizes
    if not fields.get("symmetric", True):
        return FlatTransformer(fields.get("frame", "world")), sizes
    keys = fields.get("limb_keys", "slot")
    context = None
    if fields.get("context", 0):
        context = BodyContext(fields["context"], fields.get("context_hidden", 256), keys)
    readout = LimbReadout(keys) if fields.get("readout", "torque") == "limb_linear" else TorqueReadout()
    return SET(fixed, context, readout), sizes
