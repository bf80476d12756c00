"""Topic names of the contract (DESIGN.md); the prefix comes from settings."""

from __future__ import annotations

TICKS = "prices.ticks"
FORECASTS = "prices.forecasts"
ANOMALIES = "prices.anomalies"
FEEDBACK = "feedback.messages"
SENTIMENT = "feedback.sentiment"
ESCALATIONS = "feedback.escalations"
DEAD_LETTER = "sentinel.dead-letter"

INPUT_TOPICS = (TICKS, FEEDBACK)
OUTPUT_TOPICS = (FORECASTS, ANOMALIES, SENTIMENT, ESCALATIONS, DEAD_LETTER)
ALERT_TOPICS = (ANOMALIES, ESCALATIONS)
