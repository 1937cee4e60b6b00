"""Errors raised by withdrawal.

* WithdrawalError
  * InputError              bad input: CLI exit 2, API 422; names the field and allowed values
  * KnowledgeBaseError      the knowledge base failed validation at load: refuse to start
"""

from __future__ import annotations

from collections.abc import Iterable


class WithdrawalError(Exception):
    """Base of every error this package raises on purpose."""


class InputError(WithdrawalError, ValueError):
    """Input that cannot be used; says which field and what is allowed."""

    def __init__(
        self,
        field: str,
        message: str,
        *,
        value: object = None,
        allowed: Iterable[object] | None = None,
    ) -> None:
        self.field = field
        self.value = value
        self.allowed = list(allowed) if allowed is not None else None
        text = f"{field}: {message}"
        if self.allowed is not None:
            text += f" (allowed: {', '.join(str(a) for a in self.allowed)})"
        super().__init__(text)


class KnowledgeBaseError(WithdrawalError):
    """The knowledge base data failed validation; the system must not run on it."""
