"""Measuring what happened: client-observed outage and lost acknowledged writes."""
