"""Data quality: calendar-aware validation, cross-source comparison, corporate actions, adjustments."""
