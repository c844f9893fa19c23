"""The embedded default: the same template, workflow and handlers on one machine, no AWS account."""
