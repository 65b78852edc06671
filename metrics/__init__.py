"""Built-in metrics: importing this package registers them."""

from countsbench.metrics import (  # noqa: F401
    c2st,
    count_properties,
    distributional,
    downstream,
    generation,
    images,
    mcv,
    memorisation,
    multiple,
    pointwise,
    prdc,
    scfid,
)
