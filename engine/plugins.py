"""Plugin manager: finds plugins through the ``anchorvoice`` entry-point group and keeps a registry.

Each entry point is loaded and each of its hooks called in its own try/except, so one broken
third-party plugin is recorded (``PluginManager.failures``) and everything else still loads.
Built-in plugins (the ``plugins`` package of this distribution) always load; third-party ones can
be restricted with an allowlist (the CLI fills it from ``ANCHORVOICE_PLUGINS``).
"""

from __future__ import annotations

import importlib.metadata as md
import inspect
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from anchorvoice.engine import hookspecs
from anchorvoice.engine.stage_kinds import STAGE_KINDS
from anchorvoice.engine.stages import Stage
from anchorvoice.errors import AnchorVoiceError, PluginError, PluginNotFoundError

if TYPE_CHECKING:
    from anchorvoice.engine.voices import Voice, VoiceDraft
    from anchorvoice.frames import AudioFrame

ENTRY_POINT_GROUP = "anchorvoice"
BUILTIN_DISTRIBUTION = "anchorvoice"


@dataclass
class PluginInfo:
    """One loaded plugin."""

    name: str
    version: str
    origin: str
    """'builtin', or the distribution that provides it, or 'registered in code'."""
    hooks: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    """'kind:name' of each stage it registered."""


@dataclass
class PluginFailure:
    """A plugin that failed to load or to register, with a message saying what to do."""

    name: str
    origin: str
    error: str
    hook: str | None = None


@dataclass
class RegisteredStage:
    cls: type[Stage]
    plugin: str


class PluginManager:
    """Loads plugins and keeps ``kind -> name -> stage class``."""

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self._pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.failures: list[PluginFailure] = []
        self._stages: dict[str, dict[str, RegisteredStage]] = {k: {} for k in STAGE_KINDS}

    # -- loading -----------------------------------------------------------------------------
    def load_entry_points(self, allow: Iterable[str] | None = None, third_party: bool = True) -> None:
        """Load every entry point of the group.

        ``allow``: names of third-party plugins to load (None = all); ``third_party=False`` loads
        built-ins only (what the test-suite does unless a test installs a plugin on purpose).
        """
        allowed = set(allow) if allow is not None else None
        for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else "unknown"
            version = ep.dist.version if ep.dist is not None else "?"
            builtin = dist == BUILTIN_DISTRIBUTION
            if not builtin and (not third_party or (allowed is not None and ep.name not in allowed)):
                continue
            if ep.name in self.plugins:
                continue
            origin = "builtin" if builtin else f"{dist} {version}"
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not stop the engine
                fix = (
                    "reinstall anchorvoice (`make venv`) or report a bug"
                    if builtin
                    else f"fix or uninstall {dist}, or leave it out of ANCHORVOICE_PLUGINS"
                )
                error = f"import of {ep.value!r} failed: {type(exc).__name__}: {exc} ({fix})"
                self.failures.append(PluginFailure(ep.name, origin, error))
                continue
            self.register(module, ep.name, version=version, origin=origin)

    def register(
        self, module: ModuleType | object, name: str, *, version: str = "", origin: str = "registered in code"
    ) -> bool:
        """Register one plugin object and call its hooks. Returns False if it was refused."""
        try:
            self._pm.register(module, name=name)
        except pluggy.PluginValidationError as exc:
            self.failures.append(
                PluginFailure(name, origin, f"{exc} (the hook must match engine.hookspecs)")
            )
            return False
        except ValueError as exc:
            self.failures.append(PluginFailure(name, origin, str(exc)))
            return False
        info = PluginInfo(name=name, version=version, origin=origin)
        self.plugins[name] = info
        for hook_name, kind in hookspecs.HOOK_KINDS.items():
            caller = getattr(self._pm.hook, hook_name)
            for impl in caller.get_hookimpls():
                if impl.plugin_name != name:
                    continue
                info.hooks.append(hook_name)
                try:
                    impl.function(register=self._registrar(kind, name, info))
                except Exception as exc:
                    tb = traceback.extract_tb(exc.__traceback__)[-1]
                    self.failures.append(
                        PluginFailure(
                            name,
                            origin,
                            f"{type(exc).__name__}: {exc} (at {tb.filename}:{tb.lineno})",
                            hook=hook_name,
                        )
                    )
        if any(impl.plugin_name == name for impl in self._pm.hook.check_voice.get_hookimpls()):
            info.hooks.append("check_voice")
        for extra in ("import_model", "tag_reference", "speaker_embedding"):
            if any(impl.plugin_name == name for impl in getattr(self._pm.hook, extra).get_hookimpls()):
                info.hooks.append(extra)
        return True

    def check_voice(self, draft: VoiceDraft) -> None:
        """Let every plugin refuse a voice about to be added (hook ``check_voice``).

        A plugin's own error (a VoiceError or CheckpointError saying what to fix) passes through; any
        other exception is a defect of that plugin and becomes a :class:`PluginError` naming it.
        """
        for impl in self._pm.hook.check_voice.get_hookimpls():
            try:
                impl.function(draft=draft)
            except AnchorVoiceError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"plugin {impl.plugin_name!r} failed while checking voice {draft.name!r}: "
                    f"{type(exc).__name__}: {exc} (fix or uninstall the plugin)"
                ) from exc

    def import_model(self, kind: str, path: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Ask the plugins to turn a model file into tensors + metadata for the voice store (hook
        ``import_model``); None when no plugin owns ``kind``."""
        for impl in reversed(self._pm.hook.import_model.get_hookimpls()):
            try:
                result = impl.function(kind=kind, path=path)
            except AnchorVoiceError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"plugin {impl.plugin_name!r} failed while importing the {kind} model {path}: "
                    f"{type(exc).__name__}: {exc} (fix or uninstall the plugin)"
                ) from exc
            if result is not None:
                return result  # type: ignore[no-any-return,return-value]
        return None

    def tag_reference(self, audio: AudioFrame, text: str, language: str) -> list[str]:
        """Every plugin's tags for a reference clip (hook ``tag_reference``), in order, without repeats."""
        tags: list[str] = []
        for impl in reversed(self._pm.hook.tag_reference.get_hookimpls()):
            try:
                got = impl.function(audio=audio, text=text, language=language)
            except AnchorVoiceError:
                raise
            except Exception as exc:
                raise PluginError(f"plugin {impl.plugin_name!r} failed while tagging a reference: "
                                  f"{type(exc).__name__}: {exc} (fix or uninstall the plugin)") from exc
            for t in got if isinstance(got, list | tuple) else ():
                if str(t) not in tags:
                    tags.append(str(t))
        return tags

    def speaker_embeddings(self, voice: Voice) -> dict[str, list[float]]:
        """Space -> vector, from every plugin that has one for ``voice`` (hook ``speaker_embedding``)."""
        out: dict[str, list[float]] = {}
        for impl in reversed(self._pm.hook.speaker_embedding.get_hookimpls()):
            try:
                got = impl.function(voice=voice)
            except AnchorVoiceError:
                raise
            except Exception as exc:
                raise PluginError(f"plugin {impl.plugin_name!r} failed to embed voice {voice.name!r}: "
                                  f"{type(exc).__name__}: {exc} (fix or uninstall the plugin)") from exc
            if isinstance(got, tuple) and len(got) == 2:
                out.setdefault(str(got[0]), [float(x) for x in got[1]])
        return out

    def unregister(self, name: str) -> None:
        """Remove a plugin and every stage it registered."""
        plugin = self._pm.get_plugin(name)
        if plugin is not None:
            self._pm.unregister(plugin)
        self.plugins.pop(name, None)
        for by_name in self._stages.values():
            for stage_name in [n for n, r in by_name.items() if r.plugin == name]:
                del by_name[stage_name]
        self.failures = [f for f in self.failures if f.name != name]

    def _registrar(self, kind: str, plugin: str, info: PluginInfo) -> Any:
        base = STAGE_KINDS[kind]

        def register(cls: type[Any]) -> None:
            if not (inspect.isclass(cls) and issubclass(cls, base)):
                raise PluginError(
                    f"plugin {plugin!r} registered {cls!r} as a {kind}, but it is not a subclass of "
                    f"engine.stages.{base.__name__}"
                )
            if not cls.name:
                raise PluginError(f"plugin {plugin!r}: {cls.__name__} has no `name` class attribute")
            existing = self._stages[kind].get(cls.name)
            if existing is not None and existing.cls is not cls:
                raise PluginError(
                    f"plugin {plugin!r}: {kind} {cls.name!r} is already registered by plugin "
                    f"{existing.plugin!r}; choose another name"
                )
            self._stages[kind][cls.name] = RegisteredStage(cls, plugin)
            info.stages.append(f"{kind}:{cls.name}")

        return register

    # -- lookup ------------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        """Registered stage names of one kind, sorted."""
        return sorted(self._stages[kind])

    def get(self, kind: str, name: str) -> type[Stage]:
        """The stage class, or PluginNotFoundError listing the registered ones."""
        if kind not in self._stages:
            raise PluginNotFoundError(f"unknown stage kind {kind!r}; kinds: {', '.join(sorted(self._stages))}")
        try:
            return self._stages[kind][name].cls
        except KeyError:
            have = ", ".join(self.names(kind)) or "(none installed)"
            raise PluginNotFoundError(
                f"no {kind} named {name!r}; installed: {have} (see `anchorvoice plugins`)"
            ) from None

    def stages(self, kind: str) -> list[type[Stage]]:
        """All registered classes of one kind, by name."""
        return [self._stages[kind][n].cls for n in self.names(kind)]

    def plugin_of(self, kind: str, name: str) -> str:
        return self._stages[kind][name].plugin
