"""vitbn_sweep: Hydra sweeps of small Vision Transformers (ViT vs ViTBNFFN)."""

__version__ = "0.1.0"
