"""What the Lambdas, the local stack and the audit must agree on, defined once.

Shipped to every function as the ``ContractsLayer`` Lambda layer (``/opt/python/vidmod_contracts``) and
imported by ``vidmod`` from these same files. Pure Python on the standard library (``review_tasks`` takes a
boto3 DynamoDB client as an argument): a layer adds nothing to a function's dependencies.
"""
