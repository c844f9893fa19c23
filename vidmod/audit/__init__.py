"""Explain any decision from the workflow's own records: execution history, decision record, A2I output."""
