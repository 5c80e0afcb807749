"""The application layer: the use cases, written once, that every adapter (HTTP, CLI) calls.

application/admin.py holds one function per admin action: it validates the request, makes the
change through the control plane (control/), and writes exactly one audit record naming the
caller. The HTTP routes (api/routes/) and the CLI (api/cli.py) only translate their input into
these calls and the results (or errors, application/errors.py) into responses.
"""
