"""The ``vidmod`` command: the local stack, submissions, status, history, audit and the AWS-side helpers."""
