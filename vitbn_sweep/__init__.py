"""vitbn_sweep: Hydra sweeps of small Vision Transformers (ViT vs ViTBNFFN)."""

__version__ = "0.1.0"

from vitbn_sweep import identity as _identity  # noqa: E402,F401  (registers vitbn.job_dirname)
from vitbn_sweep.data import home as _home  # noqa: E402,F401  (registers vitbn.data_home)
