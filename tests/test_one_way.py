"""One way to do each thing: the package keeps a single home for each of these concerns.

Each had two or three copies that drifted apart (two resamplers, three sentence splitters, two user-data
folder functions that disagreed on macOS/Windows, gc.freeze in two places, live sessions built twice,
the server's own output sinks beside the registered ones). The checks read the source, so a new copy
fails here before it can drift.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.test_layers import PACKAGE, module_name, python_files


def _index() -> dict[str, ast.Module]:
    return {module_name(p, PACKAGE): ast.parse(p.read_text(encoding="utf-8")) for p in python_files(PACKAGE)}


TREES = _index()


def module_functions(name: str) -> list[str]:
    """Modules that define a module-level function ``name``."""
    return sorted(m for m, tree in TREES.items()
                  if any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body))


def callers(attribute: str, owner: str) -> list[str]:
    """Modules that call ``owner.attribute(...)`` (e.g. gc.freeze)."""
    found = set()
    for m, tree in TREES.items():
        for n in ast.walk(tree):
            if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == attribute
                    and isinstance(n.func.value, ast.Name) and n.func.value.id == owner):
                found.add(m)
    return sorted(found)


def constructors(cls: str) -> list[str]:
    """Modules that call ``cls(...)``."""
    return sorted(m for m, tree in TREES.items()
                  if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == cls
                         for n in ast.walk(tree)))


def subclasses_of(base: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for m, tree in TREES.items():
        for n in ast.walk(tree):
            if isinstance(n, ast.ClassDef) and any(isinstance(b, ast.Name) and b.id == base for b in n.bases):
                found[m].append(n.name)
    return dict(found)


def string_users(text: str) -> list[str]:
    return sorted(m for m, tree in TREES.items()
                  if any(isinstance(n, ast.Constant) and n.value == text for n in ast.walk(tree)))


def test_one_resampler() -> None:
    assert module_functions("resample") == ["anchorvoice.audio_io"]


def test_one_sentence_splitter() -> None:
    """The text frontends' split_sentences method is the splitter; no module keeps its own."""
    assert module_functions("split_sentences") == []


def test_one_user_data_folder() -> None:
    assert module_functions("user_data_dir") == ["anchorvoice.engine.paths"]
    assert module_functions("default_home") == []
    for variable in ("XDG_DATA_HOME", "APPDATA", "ANCHORVOICE_HOME"):
        assert string_users(variable) == ["anchorvoice.engine.paths"], variable


def test_one_gc_freeze() -> None:
    assert callers("freeze", "gc") == ["anchorvoice.streaming.runner"]
    assert callers("unfreeze", "gc") == ["anchorvoice.streaming.runner"]


def test_one_live_builder() -> None:
    assert constructors("LiveSession") == ["anchorvoice.engine.live"]


def test_output_sinks_are_the_registered_stages() -> None:
    sinks = subclasses_of("AudioSink")
    assert sinks and all(m.startswith("anchorvoice.plugins.") for m in sinks), sinks


def test_one_virtual_mic_lookup() -> None:
    """Everything that plays into the virtual mic asks VirtualMic.play_device(), which never falls back."""
    readers = sorted(m for m, tree in TREES.items()
                     if any(isinstance(n, ast.Attribute) and n.attr == "play_device" and not
                            isinstance(getattr(n, "ctx", None), ast.Store) for n in ast.walk(tree)))
    assert "anchorvoice.streaming.live_session" in readers and "anchorvoice.plugins.audio_io" in readers
    for m in readers:
        if m == "anchorvoice.streaming.virtual_mic":
            continue  # the lookup itself
        for n in ast.walk(TREES[m]):
            if isinstance(n, ast.Attribute) and n.attr == "play_device" and isinstance(n.value, ast.Name):
                assert n.value.id not in ("status", "st"), f"{m} reads status.play_device (a second lookup)"


def test_the_package_path_is_the_checkout() -> None:
    assert Path(PACKAGE).name == "anchorvoice" and len(TREES) > 100
