"""The application: the command line, the runner, fan-out, plan, check, submission."""
