"""`sync-pipeline demo`: a bundled demo provider (Slack, Salesforce, GitHub wire formats) and a walkthrough of the product."""
