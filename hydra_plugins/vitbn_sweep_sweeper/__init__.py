"""Hydra plugin package of vitbn_sweep (Hydra only loads plugins from ``hydra_plugins``)."""
