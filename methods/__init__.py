"""Built-in methods: importing this package registers them (explicit discovery, no scanning)."""

from methods import naive  # noqa: F401
from methods import countsdiff  # noqa: F401
from methods import forest_diffusion, gain, hivae, magic, scidpm  # noqa: F401  (imputation baselines)
