"""Built-in methods: importing this package registers them (explicit discovery, no scanning).

naive: the imputation controls; generation_controls: the generation controls (memorise,
independent_nb); denoising_controls: the MCV denoising controls (no_denoising, perfect_denoising);
countsdiff: the reference (and Blackout); diffusion_baselines: Gaussian DDPM, MDLM, ReMDM; scgpt,
xtrimogene: the foundation models trained from scratch; scvi_generator: scVI as a conditional generator;
the rest: the published imputation baselines.
"""

from countsbench.methods import (  # noqa: F401
    countsdiff,
    denoising_controls,
    diffusion_baselines,
    forest_diffusion,
    gain,
    generation_controls,
    hivae,
    magic,
    naive,
    scgpt,
    scidpm,
    scvi_generator,
    xtrimogene,
)
