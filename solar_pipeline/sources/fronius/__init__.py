"""Fronius Solar API v1: the local, unauthenticated HTTP API of a Datamanager or GEN24/Tauro."""
