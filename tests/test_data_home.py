"""The data home: one place per machine, filled once from a local copy or a download,
under a lock, every file checked by size and md5."""

from __future__ import annotations

import gzip
import shutil
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import compose_config
from vitbn_sweep.data import home
from vitbn_sweep.data.home import FILES, DataError, data_home, prepare


def test_the_data_home_is_the_variable_else_the_user_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VITBN_DATA_DIR", "/somewhere/mnist")
    assert data_home() == "/somewhere/mnist"
    assert compose_config([])["data"]["root"] == "/somewhere/mnist"
    monkeypatch.delenv("VITBN_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data_home() == str(tmp_path / "vitbn_sweep" / "data")
    assert compose_config([])["data"]["root"] == str(tmp_path / "vitbn_sweep" / "data")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data_home() == str(Path.home() / ".cache" / "vitbn_sweep" / "data")


def test_a_local_copy_fills_the_home_once(data_dir: Path, tmp_path: Path) -> None:
    folder = prepare(tmp_path / "home", download=True, sources=[tmp_path / "none", data_dir])
    assert folder == tmp_path / "home" / "MNIST" / "raw"
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)  # no partial files left
    stamps = [p.stat().st_mtime_ns for p in sorted(folder.iterdir())]
    assert prepare(tmp_path / "home", download=True, sources=[data_dir]) == folder
    assert [p.stat().st_mtime_ns for p in sorted(folder.iterdir())] == stamps  # not again


@pytest.fixture
def mirror(data_dir: Path, tmp_path: Path) -> Path:
    """A file:// mirror serving <name>.gz, as MNIST's mirrors do."""
    served = tmp_path / "mirror"
    served.mkdir()
    for name in FILES:
        with gzip.open(served / f"{name}.gz", "wb", compresslevel=1) as out:
            out.write((data_dir / "MNIST" / "raw" / name).read_bytes())
    return served


def test_a_download_tries_the_mirrors_in_turn(
    mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        home, "MIRRORS", ((tmp_path / "down").as_uri() + "/", mirror.as_uri() + "/")
    )
    folder = prepare(tmp_path / "home", download=True, sources=[])
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)


def test_a_corrupt_download_is_named_and_not_kept(
    mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with gzip.open(mirror / "t10k-labels-idx1-ubyte.gz", "wb") as out:
        out.write(bytes(FILES["t10k-labels-idx1-ubyte"][0]))  # the right size, all zeros
    monkeypatch.setattr(home, "MIRRORS", (mirror.as_uri() + "/",))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte was fetched corrupt: .*md5"):
        prepare(tmp_path / "home", download=True, sources=[])
    raw = tmp_path / "home" / "MNIST" / "raw"
    assert not (raw / "t10k-labels-idx1-ubyte").exists()
    assert not [p for p in raw.iterdir() if p.name.startswith(".")]  # no partial file


def test_a_failed_download_says_what_to_do_and_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(home, "MIRRORS", ((tmp_path / "down").as_uri() + "/",))
    with pytest.raises(DataError) as err:
        prepare(tmp_path / "cache" / "vitbn_sweep" / "data", download=True, sources=[])
    assert "downloading it failed" in str(err.value) and "make data" in str(err.value)
    assert not (tmp_path / "cache").exists()  # not even an empty MNIST/raw


def test_without_download_nothing_is_fetched_or_created(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data.download=false"):
        prepare(tmp_path / "home", download=False, sources=[data_dir])
    assert not (tmp_path / "home").exists()


def test_jobs_that_start_together_fetch_each_file_once(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetched: list[str] = []

    def slow_download(name: str, partial: Path) -> None:
        fetched.append(name)
        time.sleep(0.2)  # the others arrive meanwhile and wait on the lock
        shutil.copyfile(data_dir / "MNIST" / "raw" / name, partial)

    monkeypatch.setattr(home, "_download", slow_download)
    errors: list[BaseException] = []

    def job() -> None:
        try:
            prepare(tmp_path / "home", download=True, sources=[])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=job) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(fetched) == sorted(FILES)  # four jobs, each file downloaded once
