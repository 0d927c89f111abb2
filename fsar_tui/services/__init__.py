"""Orchestration both faces (commands and screens) call: the scheduled audit pass, gate
evaluation, Stripe ingestion, the webhook server, delivery, anonymization, reports."""
