"""Use cases: send, receive, acknowledge, receipts, link tests; roles and events."""
