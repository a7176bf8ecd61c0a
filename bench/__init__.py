"""Benchmarks (DESIGN.md §7): `bench/ingest` (webhook ingest), `bench/ship` (paid -> shipped)."""
