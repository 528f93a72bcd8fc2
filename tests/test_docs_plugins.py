"""docs/plugins.md runs as written: its example plugins pass check_stage and register through the hooks."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anchorvoice.engine.pipeline_config import load_pipeline
from anchorvoice.engine.plugins import PluginManager
from tests.conftest import REPO

DOC = REPO / "docs" / "plugins.md"
MODULE_HEADER = re.compile(r"^# (my_package)/(\w+)\.py\n")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture(scope="module")
def doc_modules() -> Iterator[dict[str, types.ModuleType]]:
    """Each ```python block headed `# my_package/NAME.py` becomes the module my_package.NAME."""
    package = types.ModuleType("my_package")
    package.__path__ = []
    modules: dict[str, types.ModuleType] = {}
    sys.modules["my_package"] = package
    try:
        for code in blocks("python"):
            m = MODULE_HEADER.match(code)
            if not m:
                continue
            module = types.ModuleType(f"my_package.{m.group(2)}")
            sys.modules[module.__name__] = module
            exec(compile(code, f"docs/plugins.md:{module.__name__}", "exec"), module.__dict__)
            setattr(package, m.group(2), module)
            modules[m.group(2)] = module
        yield modules
    finally:
        for name in [n for n in sys.modules if n == "my_package" or n.startswith("my_package.")]:
            del sys.modules[name]


def test_the_guide_has_three_example_plugins(doc_modules: dict[str, types.ModuleType]) -> None:
    assert set(doc_modules) == {"tremolo", "sines", "esperanto"}


def test_every_snippet_runs(doc_modules: dict[str, types.ModuleType]) -> None:
    """The check_stage snippets and the test functions of the guide, in the namespace of its modules."""
    namespace: dict[str, Any] = {}
    for module in doc_modules.values():
        namespace.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    ran = 0
    for code in blocks("python"):
        if MODULE_HEADER.match(code):
            continue
        exec(compile(code, "docs/plugins.md", "exec"), namespace)
        ran += 1
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    for test in tests:
        test()
    assert ran >= 3 and len(tests) >= 2


@pytest.mark.parametrize("module,kind,name", [
    ("tremolo", "effect", "tremolo"), ("sines", "vocoder", "sine-bank"), ("esperanto", "text_frontend", "esperanto"),
])
def test_each_registers_through_its_hook(doc_modules: dict[str, types.ModuleType], module: str, kind: str,
                                         name: str) -> None:
    pm = PluginManager()
    assert pm.register(doc_modules[module], module), pm.failures
    assert not pm.failures
    assert pm.get(kind, name).__module__ == f"my_package.{module}"


def test_the_effect_goes_into_a_preset(doc_modules: dict[str, types.ModuleType], builtin_plugins: PluginManager,
                                       tmp_path: Path) -> None:
    (snippet,) = [b for b in blocks("toml") if "tremolo" in b and "[[effects]]" in b]
    preset = tmp_path / "vc-tremolo.toml"
    preset.write_text((REPO / "configs" / "vc.toml").read_text(encoding="utf-8") + "\n" + snippet)
    pm = PluginManager()
    pm.load_entry_points(third_party=False)
    pm.register(doc_modules["tremolo"], "tremolo")
    cfg = load_pipeline(preset, pm)
    assert [e.plugin for e in cfg.effects][-1] == "tremolo"
    assert cfg.effects[-1].params == {"rate_hz": 6.0, "depth": 0.3}


def test_the_esperanto_frontend_reads_esperanto(doc_modules: dict[str, types.ModuleType]) -> None:
    from anchorvoice.frames import TextFrame

    fe = doc_modules["esperanto"].Esperanto()
    ph = fe.phonemize(TextFrame("Ĉu vi parolas?", "eo"))
    assert ph.symbols == ["CH", "UW1", "V", "IY1", "P", "AA1", "R", "OW1", "L", "AA1", "S", "?"]
    assert ph.word2ph == [2, 2, 7, 1]
    assert fe.split_sentences("Saluton! Kiel vi fartas?") == ["Saluton!", "Kiel vi fartas?"]
