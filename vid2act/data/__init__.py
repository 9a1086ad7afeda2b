"""Demonstration datasets: the on-disk format, its reader, and parallel, resumable collection."""
