"""The floors of the package import only downward (anchorvoice/__init__.py names them).

core (``anchorvoice.errors``, ``.frames``, ``.audio_io``) < ``streaming`` < ``engine`` < ``plugins`` |
``obs_bridge`` < ``engine.cli``. Plugins and the OBS bridge stand side by side and import neither each
other nor the control server's modules; nothing imports the CLI; production code does not import the
plugin authors' test helpers (``engine.testing``). Every import counts, also those inside functions.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "anchorvoice"

FLOORS: list[tuple[str, int]] = [
    # Longest prefix wins: engine.cli sits above everything although it lives in engine/.
    ("anchorvoice.engine.cli", 4),
    ("anchorvoice.train", 5),  # the torchrun entry (`python -m anchorvoice.train`): a shim above the CLI
    ("anchorvoice.plugins", 3),
    ("anchorvoice.obs_bridge", 3),
    ("anchorvoice.engine", 2),
    ("anchorvoice.streaming", 1),
    ("anchorvoice", 0),
]

FORBIDDEN: list[tuple[str, str, str]] = [
    ("anchorvoice.plugins", "anchorvoice.obs_bridge", "plugins and the OBS bridge are side by side"),
    ("anchorvoice.obs_bridge", "anchorvoice.plugins", "plugins and the OBS bridge are side by side"),
    ("anchorvoice.obs_bridge", "anchorvoice.engine.server",
     "the bridge sees the engine's event interface (anchorvoice.engine.events), not the server's modules"),
    ("anchorvoice", "anchorvoice.engine.testing", "engine.testing holds test helpers for plugin authors only"),
]
"""(importer prefix, imported prefix, why): pairs refused even where the floors would allow them."""

TOP_LEVEL_NAMES = ("engine", "plugins", "streaming", "obs_bridge")
"""Folder names that are only importable under ``anchorvoice.``; a bare ``import engine`` is a bug."""


@dataclass(frozen=True)
class Violation:
    module: str
    imported: str
    line: int
    why: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported}: {self.why}"


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def floor(module: str) -> tuple[str, int]:
    for prefix, level in FLOORS:
        if _within(module, prefix):
            return prefix, level
    raise ValueError(f"{module} is outside the anchorvoice package")


def module_name(path: Path, package_root: Path) -> str:
    rel = path.relative_to(package_root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, module: str) -> list[tuple[str, int]]:
    """Absolute names of everything ``path`` imports (relative imports resolved), with line numbers."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, node.lineno))
            # `from anchorvoice import engine` imports the sub-package itself.
            found.extend((f"{target}.{alias.name}", node.lineno) for alias in node.names if alias.name != "*")
    return found


def _is_module(name: str, package_root: Path) -> bool:
    rel = Path(*name.split(".")[1:])
    base = package_root / rel
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def python_files(package_root: Path) -> list[Path]:
    """Every .py file of the package, following the folder links of anchorvoice/ (rglob does not)."""
    return sorted(Path(folder) / name for folder, _, names in os.walk(package_root, followlinks=True)
                  for name in names if name.endswith(".py"))


def violations(package_root: Path) -> list[Violation]:
    found: list[Violation] = []
    for path in python_files(package_root):
        module = module_name(path, package_root)
        src_prefix, src_level = floor(module)
        for imported, line in imports_of(path, module):
            head = imported.split(".")[0]
            if head in TOP_LEVEL_NAMES:
                found.append(Violation(module, imported, line, f"import it as anchorvoice.{imported}"))
                continue
            if head != "anchorvoice" or not _is_module(imported, package_root):
                continue  # third-party, or a name imported from a module (checked as that module)
            dst_prefix, dst_level = floor(imported)
            if dst_level > src_level:
                why = f"{src_prefix} (floor {src_level}) may not import {dst_prefix} (floor {dst_level})"
                found.append(Violation(module, imported, line, why))
            elif dst_level == src_level and dst_prefix != src_prefix:
                found.append(Violation(module, imported, line, f"{src_prefix} and {dst_prefix} are side by side"))
            for importer, target, why in FORBIDDEN:
                if _within(module, importer) and _within(imported, target) and not _within(module, target):
                    found.append(Violation(module, imported, line, why))
    return found


def test_layers_only_point_down() -> None:
    assert len(python_files(PACKAGE)) > 100, "the package's folder links are missing"
    problems = violations(PACKAGE)
    assert not problems, "imports against the floors:\n" + "\n".join(map(str, problems))


def _fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "anchorvoice"
    for name, text in {"__init__.py": "", "errors.py": "", "streaming/__init__.py": "",
                       "engine/__init__.py": "", "engine/server/__init__.py": "", "engine/server/events.py": "",
                       "engine/events.py": "", "engine/testing.py": "", "engine/cli/__init__.py": "",
                       "plugins/__init__.py": "", "obs_bridge/__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize("name,text,why", [
    ("streaming/ring.py", "from anchorvoice.engine import events\n", "may not import anchorvoice.engine"),
    ("streaming/ring.py", "def f():\n    from ..engine.events import X\n", "may not import anchorvoice.engine"),
    ("errors.py", "import anchorvoice.streaming\n", "may not import anchorvoice.streaming"),
    ("engine/pipeline.py", "from anchorvoice.plugins import gsv\n", "may not import anchorvoice.plugins"),
    ("engine/pipeline.py", "from anchorvoice.engine.cli import main\n", "may not import anchorvoice.engine.cli"),
    ("engine/pipeline.py", "from anchorvoice.engine.testing import check_stage\n", "test helpers"),
    ("obs_bridge/bridge.py", "from anchorvoice.engine.server.events import EventBus\n", "event interface"),
    ("plugins/x.py", "from anchorvoice.obs_bridge import bridge\n", "side by side"),
    ("plugins/x.py", "from engine.stages import Effect\n", "import it as anchorvoice.engine.stages"),
])
def test_checker_catches_upward_imports(tmp_path: Path, name: str, text: str, why: str) -> None:
    root = _fake_package(tmp_path, {name: text})
    problems = violations(root)
    assert problems and why in str(problems[0]), problems


def test_checker_allows_downward_imports(tmp_path: Path) -> None:
    root = _fake_package(tmp_path, {
        "engine/pipeline.py": "from anchorvoice.streaming import ring\nfrom anchorvoice.errors import X\n",
        "obs_bridge/bridge.py": "from anchorvoice.engine.events import EventSource\n",
        "engine/cli/main.py": "from anchorvoice.obs_bridge import bridge\nfrom anchorvoice.plugins import x\n",
        "engine/testing.py": "from anchorvoice.engine.testing import y\n",
        "plugins/x.py": "from anchorvoice.engine.stages import Effect\nimport numpy\n",
    })
    assert violations(root) == []
