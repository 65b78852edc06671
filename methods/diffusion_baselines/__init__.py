"""Diffusion baselines on the CountsDiff Method interface (SPEC section 7): Gaussian DDPM on ln(1 + x)
and masked diffusion (MDLM, ReMDM) over count tokens, for generation and RePaint imputation.

Training, guidance, chunked sampling and persistence are the shared diffusion core (`countsbench.methods.diffusion`);
each file here holds only a family's mathematics: `ddpm_schedule` (cosine alpha-bar grid),
`masking_schedules` (keep probability alpha(t) and the MDLM loss weight), `token_network` (the
masked-diffusion MLP), `gaussian` (``gaussian_ddpm``) and `masked` (``mdlm``, ``remdm``).
"""

from countsbench.methods.diffusion_baselines.gaussian import GaussianDDPM
from countsbench.methods.diffusion_baselines.masked import MDLM, ReMDM

__all__ = ["MDLM", "GaussianDDPM", "ReMDM"]
