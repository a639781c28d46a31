"""``make bench`` and ``make bench-gpu``: the speed of this project's training on a device,
and how far it is from the device's limit. Run from the repository root
(``python -m benchmarks.bench``); not part of the installed library."""
