"""What testers and operators run against a pipeline: record a stream, replay it,
verify PostgreSQL against the offline oracle, read the dead letters, and start the
processor and sink as child processes (the pipeline runner the demo and drills use)."""
