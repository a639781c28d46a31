"""The study's own tools, run from the repository root and not part of the installed library:

- ``make publish`` (``python -m studies.publish``): the study's pages (results/README.md,
  the CSVs, each sweep's report, the README's findings), with the findings, the comparison
  with the original article, the rank-based cross-checks, the adaptive-seeding disclosure
  and the redaction of machine paths (``findings``, ``article``, ``robustness``,
  ``seeding``, ``redact``, ``study``);
- ``make simulate`` (``python -m studies.simulate``, ``python -m studies.simulate_gap``):
  the analysis's rules checked against a known truth by simulation (the t intervals,
  ``resolve``'s seed rounds, ``resolve --gap``)."""
