"""The embedded AWS stand-in: the same template, workflow and handlers on one machine, no AWS account."""
