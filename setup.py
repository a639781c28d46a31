"""Packages by discovery; everything else about the project is in pyproject.toml.

Every package under vitbn_sweep/ and analysis/, the hydra_plugins/ namespace
package, and the top-level conf/ tree shipped as ``vitbn_sweep.conf`` (its folder
mapping is in pyproject.toml), so Hydra finds it after a plain install. A new
module or config folder ships without a line here; a test builds the wheel and
checks that it holds every module and every config file.
"""

from setuptools import find_namespace_packages, find_packages, setup

NO_CACHE = ["*__pycache__*"]
conf = find_namespace_packages(where="conf", exclude=NO_CACHE)
setup(
    packages=[
        *find_packages(include=["vitbn_sweep", "vitbn_sweep.*", "analysis", "analysis.*"]),
        *find_namespace_packages(include=["hydra_plugins.*"], exclude=NO_CACHE),
        "vitbn_sweep.conf",
        *(f"vitbn_sweep.conf.{name}" for name in conf),
    ]
)
