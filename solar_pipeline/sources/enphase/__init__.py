"""Enphase Monitoring API v4 (Enlighten cloud): OAuth tokens, request budget, client, parsers."""
