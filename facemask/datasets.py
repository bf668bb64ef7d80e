"""Which dataset folders a UI may train on: chosen from a list, never typed as a path.

A dataset is a sub-folder of a dataset root: FACEMASK_DATA_DIR (default `<repo>/data`) and, on a
development machine, the `shared/datasets` folder next to the repository when there is one.
Nothing outside those roots can be chosen or checked.
"""

from __future__ import annotations

import os
from pathlib import Path

from facemask.data import class_counts
from facemask.errors import DatasetError
from facemask.files import REPO_ROOT


def dataset_roots() -> list[Path]:
    """The folders whose sub-folders may be trained on (only those that exist)."""
    roots = [Path(os.environ.get("FACEMASK_DATA_DIR", REPO_ROOT / "data"))]
    shared = REPO_ROOT.parent / "shared" / "datasets"
    if shared.is_dir():
        roots.append(shared)
    return [r.resolve() for r in roots if r.is_dir()]


def dataset_choices(roots: list[Path]) -> dict[str, Path]:
    """{"<root name>/<folder>": folder} for every visible sub-folder of the roots."""
    choices: dict[str, Path] = {}
    for root in roots:
        for path in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            choices[f"{root.name}/{path.name}"] = root / path.name
    return choices


def check_dataset(folder: Path, roots: list[Path]) -> dict[str, int]:
    """Images per class folder of a chosen folder; DatasetError (one sentence) when it is not
    a sub-folder of a root, or cannot be trained on."""
    if not any(folder.parent == root for root in roots) or folder.name.startswith("."):
        raise DatasetError(f"{folder} is not inside a dataset folder this app may read.")
    return class_counts(folder)


def find_dataset(recorded: str, roots: list[Path] | None = None) -> Path | None:
    """The folder a record names (files.portable_path): a path relative to the repository, or
    the name of a folder in one of the dataset roots; None when it is not on this machine."""
    candidates = [REPO_ROOT / recorded]
    candidates += [root / recorded for root in (dataset_roots() if roots is None else roots)]
    return next((path for path in candidates if path.is_dir()), None)
