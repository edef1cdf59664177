"""A stand-in for vLLM's API server process (tests only): it talks to the
engine process and never imports the worker."""
