"""One thing the validator found: what, where, how bad, and how to fix it.

Kept in its own module so the ELF, jar and image checks can all produce findings without importing
each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    """An error stops a build; a warning is printed; info is worth knowing but needs no action."""

    severity: Severity
    code: str  # stable short name, e.g. "elf-needed"
    path: str  # the file the finding is about (a host path, an image path, or jar!/entry)
    message: str
    hint: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def line(self) -> str:
        text = f"{self.severity}: {self.path}: {self.message}"
        return f"{text}\n  hint: {self.hint}" if self.hint else text


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Errors first, then warnings, then info; stable otherwise; duplicates dropped."""
    unique = list(dict.fromkeys(findings))
    return sorted(unique, key=lambda f: SEVERITY_ORDER[f.severity])
