"""``make simulate``: the analysis's rules checked against a known truth by simulation
(the t intervals, ``resolve``'s seed rounds, ``resolve --gap``). Run from the repository
root (``python -m studies.simulate``, ``python -m studies.simulate_gap``); not part of the
installed library, which keeps only what it prices a published design with
(``analysis.seeding.false_win_rate``)."""
