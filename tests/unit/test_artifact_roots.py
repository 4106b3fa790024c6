"""``serve --default-artifact-root``: resolving the root (query/artifact_roots.py) and the local folders
the server reads artifacts from."""

from __future__ import annotations

from pathlib import Path

import pytest

from producer.errors import ContractError
from query.artifact_roots import local_folder, resolve_default_artifact_root, with_resolved_roots
from query.settings import Settings


@pytest.mark.parametrize(("raw", "expected"), [
    ("", ""),
    ("/srv/mlruns", "/srv/mlruns"),
    ("/srv/mlruns/", "/srv/mlruns"),
    ("file:///srv/mlruns/", "file:///srv/mlruns"),
    ("s3://bucket/prefix/", "s3://bucket/prefix"),
    ("s3://bucket", "s3://bucket"),
    ("gs://b/p", "gs://b/p"),
])
def test_resolved_as_given_once_absolute(raw: str, expected: str) -> None:
    assert resolve_default_artifact_root(raw) == expected


def test_a_relative_path_is_made_absolute_and_stays_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_default_artifact_root("mlruns") == f"{tmp_path}/mlruns"
    assert resolve_default_artifact_root("./a/b/") == f"{tmp_path}/a/b"


def test_a_relative_file_uri_is_made_absolute_and_stays_a_uri(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_default_artifact_root("file:mlruns") == f"file://{tmp_path}/mlruns"


@pytest.mark.parametrize(("raw", "why"), [
    ("s3://", "names no bucket"),
    ("s3:///prefix", "names no bucket"),
    ("gs://", "names no bucket"),
    ("https://", "names no bucket"),
    ("runs:/abc/artifacts", "cannot be an artifact root"),
    ("mlflow-artifacts:/x", "cannot be an artifact root"),
    ("s3://bucket/p#frag", "fragment or query"),
    ("s3://bucket/p?x=1", "fragment or query"),
    ("file://otherhost/srv", "is not a valid remote uri"),
])
def test_refused(raw: str, why: str) -> None:
    with pytest.raises(ContractError, match=why):
        resolve_default_artifact_root(raw)


def test_settings_read_the_environment_and_resolve_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({"RUNLEDGER_DEFAULT_ARTIFACT_ROOT": "roots/"})
    assert settings.default_artifact_root == "roots/"
    resolved = with_resolved_roots(settings)
    assert resolved.default_artifact_root == f"{tmp_path}/roots"
    assert resolved.experiments_root == f"{tmp_path}/roots"
    assert with_resolved_roots(resolved) is resolved


def test_unset_leaves_new_experiments_behind_the_proxy(tmp_path: Path) -> None:
    settings = with_resolved_roots(Settings(data_dir=tmp_path))
    assert settings.experiments_root == settings.artifact_root == str(tmp_path / "artifacts")


@pytest.mark.parametrize(("uri", "folder"), [
    ("/srv/a/1/r/artifacts", "/srv/a/1/r/artifacts"),
    ("file:///srv/a/1/r/artifacts", "/srv/a/1/r/artifacts"),
    ("file:/srv/a", "/srv/a"),
    ("file://localhost/srv/a", "/srv/a"),
    ("file:///srv/with%20space", "/srv/with space"),
    ("relative/path", None),
    ("file://otherhost/srv/a", None),
    ("s3://bucket/a", None),
    ("mlflow-artifacts:/1/r/artifacts", None),
])
def test_local_folder(uri: str, folder: str | None) -> None:
    assert local_folder(uri) == (None if folder is None else Path(folder))
