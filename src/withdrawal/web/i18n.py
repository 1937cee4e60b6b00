"""The pages' languages: English and Spanish (issue 17).

Template text is marked with ``_()`` and translated from gettext catalogues in ``web/locale``
(``es/LC_MESSAGES/messages.po``), compiled in memory with Babel when first used: a fresh clone needs
no build step and no compiled ``.mo`` file is kept. The language of a request is the signed-in
account's choice (``users.language``), else the ``lang`` cookie set by the language switch, else
English. The patient content itself is in ``knowledge/data/patient_info.es.yaml`` (same paragraphs,
same sources).
"""

from __future__ import annotations

import gettext as _gettext
from contextvars import ContextVar
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from fastapi import Request

from withdrawal.service.models import User

LANGUAGES = ("en", "es")
NAMES = {"en": "English", "es": "Español"}
COOKIE = "lang"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

_current: ContextVar[str] = ContextVar("withdrawal_lang", default="en")


@cache
def catalogue(lang: str) -> _gettext.NullTranslations:
    """The compiled catalogue of ``lang`` (English: the text as written)."""
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang == "en" or not po.is_file():
        return _gettext.NullTranslations()
    with po.open("rb") as fh:
        cat = read_po(fh, locale=lang)
    buf = BytesIO()
    write_mo(buf, cat)
    buf.seek(0)
    return Translations(fp=buf)


def gettext(message: str) -> str:
    return catalogue(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return catalogue(_current.get()).ngettext(singular, plural, n)


def choose(request: Request, user: User | None) -> str:
    """The language of this request: the account's, else the cookie's, else English."""
    if user is not None and user.language in LANGUAGES:
        return str(user.language)
    cookie = request.cookies.get(COOKIE)
    return cookie if cookie in LANGUAGES else "en"


def activate(lang: str) -> None:
    """Translate what is rendered next in this context (thread or task) into ``lang``."""
    _current.set(lang if lang in LANGUAGES else "en")


def current() -> str:
    return _current.get()
