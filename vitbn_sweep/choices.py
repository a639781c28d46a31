"""The names a config value may take, in one place (imports nothing heavy).

``validate`` checks configs against these; the code that acts on a name maps it
(``vitbn_sweep.models.NORMS``, ``vitbn_sweep.data.build_pipeline``, the trackers),
and a test pins that every mapping covers exactly these names.
"""

from __future__ import annotations

NORMS = {"vit": ("layer", "batch", "none"), "dnn": ("batch", "none")}  # per model.arch
VIT_NORM_SLOTS = ("embed", "attn", "ffn_pre", "ffn_hidden", "final")  # model.norms.<slot>
PIPELINES = ("fast", "torchvision")  # data.pipeline
PRECISIONS = (
    "fp32",
    "bf16",
)  # trainer.precision (bf16: autocast; CUDA, or a CPU with bf16 matrix units)
LOGGERS = ("none", "wandb", "mlflow")  # logger.name
WANDB_MODES = ("auto", "online", "offline", "disabled")  # logger.mode
