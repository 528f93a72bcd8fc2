"""Pick the registered text frontend for a language, with an error that lists what is installed."""

from __future__ import annotations

from anchorvoice.engine.plugins import PluginManager
from anchorvoice.engine.stages import TextFrontend
from anchorvoice.errors import UnsupportedLanguageError


def installed_languages(plugins: PluginManager) -> dict[str, str]:
    """``language -> frontend name`` over every registered text frontend (first one wins)."""
    out: dict[str, str] = {}
    for cls in plugins.stages("text_frontend"):
        if issubclass(cls, TextFrontend):
            for lang in cls.languages:
                out.setdefault(lang, cls.name)
    return out


def frontend_for_language(plugins: PluginManager, language: str) -> type[TextFrontend]:
    """The frontend class that speaks ``language``; UnsupportedLanguageError naming the installed ones."""
    langs = installed_languages(plugins)
    if language not in langs:
        have = ", ".join(sorted(langs)) or "none"
        raise UnsupportedLanguageError(
            f"no text frontend for language {language!r}; installed languages: {have} "
            "(install a text-frontend plugin for it, or choose one of these)"
        )
    cls = plugins.get("text_frontend", langs[language])
    assert issubclass(cls, TextFrontend)
    return cls
