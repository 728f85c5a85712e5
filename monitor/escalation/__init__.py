"""Escalation: a slower vision-language model writes a diagnosis for flagged frames."""
