"""``python -m equiworld.play NAME``: watch a shipped model (:mod:`equiworld.pretrained`)."""
