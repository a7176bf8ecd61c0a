"""Webhook ingest benchmark (DESIGN.md §7): `/webhooks/xianguanjia/` against a bare insert-only endpoint."""
