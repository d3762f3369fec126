"""Outgoing mail (issue 30): ``sender.Mailer`` talks SMTP when ``MODELGATE_SMTP_HOST`` is set,
``messages`` writes the mails (verification, password reset, invitation, low balance, key budget),
``alerts`` finds who should get an alert mail, off the request path; ``spend_alerts`` raises budget
alerts and delivers them (``webhooks``: signed posts)."""
