"""Who did what: ``events.record_audit`` is how every service records an action, ``trail`` how
leads read the trail (and how the admin's unblinding pages are recorded)."""
