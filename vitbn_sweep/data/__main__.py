"""``python -m vitbn_sweep.data [--from DIR] [--root DIR]``: MNIST into the data home, checked.

``make data`` runs it. Sweeps and runs do the same on first use, so this is only
needed to prepare a machine ahead (for example a cluster's shared folder before a
Slurm sweep) or to copy MNIST from a folder of your own.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from vitbn_sweep.data.home import FILES, LOCAL_COPIES, DataError, data_home, prepare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitbn_sweep.data", description=__doc__)
    parser.add_argument(
        "--root", default=data_home(), help="where MNIST/raw/ goes (default: %(default)s)"
    )
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        help="a folder whose MNIST/raw/ holds the four idx files, copied before any download "
        f"(tried anyway: {', '.join(map(str, LOCAL_COPIES))})",
    )
    parser.add_argument("--no-download", action="store_true", help="fail instead of downloading")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sources = (args.source, *LOCAL_COPIES) if args.source else LOCAL_COPIES
    try:
        folder = prepare(args.root, download=not args.no_download, sources=sources)
    except DataError as exc:
        print(f"vitbn_sweep.data: {exc}", file=sys.stderr)
        return 1
    print(f"MNIST ready in {folder} ({len(FILES)} files, size and md5 checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
