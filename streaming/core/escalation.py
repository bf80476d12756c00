"""Escalation rules for negative feedback: priority and a human-readable reason.

Rules (documented in README): a message is escalated when ``p_negative`` reaches the
model's escalation threshold. Priority:
- P1: very confident (p >= 0.9) AND an urgent term (money back, churn, legal, safety, broken);
- P2: very confident, OR an urgent term;
- P3: otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Priority = Literal["P1", "P2", "P3"]
HIGH_CONFIDENCE = 0.9
EXCERPT_CHARS = 280
URGENT_TERMS = ("refund", "money back", "chargeback", "cancel", "lawyer", "legal", "sue",
                "broken", "defective", "dangerous", "injur", "fraud", "scam", "never again",
                "complaint", "unacceptable", "return")
_URGENT_RE = re.compile(r"\b(" + "|".join(re.escape(t) for t in URGENT_TERMS) + r")", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Escalation:
    priority: Priority
    reason: str


def urgent_terms(text: str) -> list[str]:
    found = {m.group(1).lower() for m in _URGENT_RE.finditer(text)}
    return sorted(found)


def decide(text: str, p_negative: float, threshold: float) -> Escalation | None:
    if p_negative < threshold:
        return None
    terms = urgent_terms(text)
    confident = p_negative >= HIGH_CONFIDENCE
    priority: Priority = "P1" if confident and terms else "P2" if confident or terms else "P3"
    reason = f"p_negative={p_negative:.3f} >= threshold {threshold:.3f}"
    if terms:
        reason += f"; urgent terms: {', '.join(terms)}"
    return Escalation(priority, reason)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
