"""The identity domain: members, enrollment, search and decisions, review, keys and the audit trail."""
