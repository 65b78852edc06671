"""The diffusion core shared by every diffusion method (CountsDiff, Blackout, Gaussian DDPM, MDLM/ReMDM).

One concept per file: `ema` (the weight average), `rows` (training rows as tensors), `training` (the ONE
training loop: warm-up, clipping, weight decay, EMA after the step, checkpoint/resume with RNG state),
`guidance` (the ONE batched conditional/unconditional pass), `transitions` (the birth/unmask and
attrition/re-mask probabilities shared by the binomial and masked reverse processes), `sampling` (the ONE
chunked generate/impute driver with K imputations, RePaint inputs and condition codes) and `method` (the
`DiffusionMethod` base: fit, sample, impute, save/load). A family contributes only its mathematics: a
network, a loss callable and a reverse process.
"""
