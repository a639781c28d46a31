"""``python -m studies.publish`` (``make publish``): a study dir without the study's sweeps is
refused with exit 2 and the missing sweep named, before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from studies.publish import main


def test_a_study_dir_without_its_sweeps_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("untouched\n")
    assert main([str(tmp_path / "study"), "--readme", str(readme)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("publish: error: ") and "study/article_full: no such sweep dir" in err
    assert readme.read_text() == "untouched\n" and not (tmp_path / "study").exists()
