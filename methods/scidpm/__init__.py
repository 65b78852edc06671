"""scIDPMs: a CSDI-style conditional DDPM over genes (SPEC section 7); importing registers it."""

from countsbench.methods.scidpm.method import ScidpmImputation

__all__ = ["ScidpmImputation"]
