"""Jobs: sweeps expanded into variants, run by an executor (a local process pool or Ray), each
job tracked in the catalog with a heartbeat so a dead worker shows as failed and a re-submitted
job resumes from its last checkpoint."""
