"""Enphase Monitoring API v4 (the Enlighten cloud): OAuth tokens, request budget, client, parsers."""
