"""Groups, group actions and equivariant layers shared by equiworld models."""
